"""``sciml_inverse.interruptible``: a Ctrl-C/SIGTERM the interpreter drops is not lost."""

from __future__ import annotations

import gc
import signal
import sys

import pytest

from sciml_inverse import atomic_path, interruptible, raise_if_interrupted


class _SignalOnCollect:
    """Sends ``sig`` from its finalizer: the handler runs inside ``__del__``, where the
    interpreter drops the KeyboardInterrupt it raises (the CLI bug this module fixes)."""

    def __init__(self, sig: int) -> None:
        self.sig = sig

    def __del__(self) -> None:
        signal.raise_signal(self.sig)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_dropped_interrupt_is_raised_again_and_not_reported(sig, tmp_path, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)  # what stderr would show
    out = tmp_path / "out.txt"
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            obj = _SignalOnCollect(sig)
            del obj  # the handler's KeyboardInterrupt is dropped inside __del__ ...
            gc.collect()
            reached.append("after")  # ... so the block goes on
            with atomic_path(out) as tmp:  # but no output is committed
                tmp.write_text("partial")
    assert reached == ["after"]
    assert not out.exists() and not list(tmp_path.iterdir())
    assert reported == []


def test_raise_if_interrupted_at_a_safe_point_and_state_restored():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
              sys.unraisablehook)
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            raise_if_interrupted()  # nothing arrived: no-op
            obj = _SignalOnCollect(signal.SIGTERM)
            del obj
            raise_if_interrupted()
            pytest.fail("raise_if_interrupted did not raise")
    after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
             sys.unraisablehook)
    assert after == before
    raise_if_interrupted()  # the record was cleared on exit
    with interruptible():
        pass  # a clean block ends normally


def test_a_signal_outside_a_finalizer_raises_where_it_lands():
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            signal.raise_signal(signal.SIGTERM)
            pytest.fail("no KeyboardInterrupt at the signal")


def test_other_unraisable_errors_are_still_reported(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    class Bad:
        def __del__(self):
            raise RuntimeError("boom in finalizer")

    with interruptible():
        b = Bad()
        del b
        gc.collect()
    assert [str(r.exc_value) for r in reported] == ["boom in finalizer"]
