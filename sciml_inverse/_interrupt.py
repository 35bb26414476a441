"""Interrupts that are never lost: Ctrl-C and SIGTERM end a command once, cleanly.

Python runs a signal handler between two bytecodes of the main thread, wherever that thread is.
When it is inside a finalizer or a weakref callback (a garbage collection, e.g. the ``remove``
callback of a :class:`weakref.WeakValueDictionary`), the :class:`KeyboardInterrupt` that the
handler raises cannot propagate: the interpreter reports it as "Exception ignored in ..." on
stderr and *drops* it, and the run goes on. :func:`interruptible` makes an interrupt sticky:

* its handler (SIGINT and SIGTERM) records the signal before raising;
* a :data:`sys.unraisablehook` filter hides the report of a dropped interrupt;
* :func:`raise_if_interrupted` raises it again at the next safe point: the tile loops and
  :func:`~sciml_inverse.atomic_path` (which so never commits an output after an interrupt).

Nothing in the standard library does this (``signal`` gives the handler, not the delivery
point), hence this small module.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

_pending: list[int] = []  # the signal numbers received inside the active interruptible()


def raise_if_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` if a signal arrived inside :func:`interruptible`.

    A no-op outside it and when no signal arrived; call it at points where stopping is safe.

    Raises
    ------
    KeyboardInterrupt
        A signal arrived (also when the interpreter dropped the first one).
    """
    if _pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Turn ``signals`` into one :class:`KeyboardInterrupt` that cannot be lost.

    Inside the block, SIGINT and SIGTERM raise :class:`KeyboardInterrupt` where they land (as
    Ctrl-C does) *and* are recorded, so that :func:`raise_if_interrupted` raises again if the
    first one was dropped by the interpreter (module docstring); such drops are not reported
    on stderr, and a block in which one arrived always ends with :class:`KeyboardInterrupt`
    (at the latest when it exits). Outside the main thread (where handlers cannot be
    installed) it does nothing. Handlers, the unraisable hook and the record are restored on
    exit.

    Parameters
    ----------
    signals : tuple of int, default ``(SIGINT, SIGTERM)``
        The signals handled inside the block.

    Raises
    ------
    KeyboardInterrupt
        When one of ``signals`` arrived inside the block.

    Examples
    --------
    >>> from sciml_inverse import interruptible, raise_if_interrupted
    >>> with interruptible():
    ...     raise_if_interrupted()  # nothing arrived
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        _pending.append(signum)
        raise KeyboardInterrupt

    def hook(unraisable):  # a dropped interrupt: raise_if_interrupted raises it again
        if not (_pending and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    previous = {s: signal.signal(s, handler) for s in signals}
    previous_hook, sys.unraisablehook = sys.unraisablehook, hook
    try:
        yield
        raise_if_interrupted()  # a dropped interrupt still ends the block with one
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        sys.unraisablehook = previous_hook
        _pending.clear()
