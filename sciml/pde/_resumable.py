"""The one resumable sample loop of the data generators (Darcy, Burgers, Stokes).

A data set is ``n`` independent solves; :func:`run_resumable` fills an ``(n, *shape)`` array
from a stream of ``(first index, solutions)`` chunks, shows a progress bar, and, given a
checkpoint path, writes the solutions done so far atomically every ``every`` samples and
continues from them on the next call with the same generating parameters (``key``).

The checkpoint holds data, not a model, so it is an ``.npz`` of plain arrays (``out``, ``done``,
``key``; read with ``allow_pickle=False``), not a :func:`sciml_inverse.save_checkpoint` file;
it is deleted when the loop completes. :func:`pool_chunks` runs the solves in worker processes
that stop at once on Ctrl-C, SIGTERM or an error (and exit when the parent is killed) instead of
finishing their queue.
"""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciml_inverse import atomic_path

__all__ = ["run_resumable", "pool_chunks", "sample_chunks"]

#: Chunks of solutions from a start index: ``chunks(start)`` yields ``(first, solutions)``.
Chunks = Callable[[int], Iterable[tuple[int, np.ndarray]]]


def _write_ck(path: Path, out: np.ndarray, done: int, key: str) -> None:
    """The first ``done`` solutions, with ``key``, written atomically."""
    with atomic_path(path, mkdir=False) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, out=out[:done], done=np.int64(done), key=np.array(key))


def _read_ck(path: Path, key: str, n: int, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    try:
        with np.load(path, allow_pickle=False) as ck:
            ck_key, ck_done = str(ck["key"]), int(ck["done"])
            # "sol": the name Darcy checkpoints used before the loops were merged
            saved = ck["out"] if "out" in ck.files else ck["sol"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"the checkpoint {str(path)!r} is unreadable ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'corrupt'}); delete it to start over"
        ) from None
    if ck_key != key:
        raise ValueError(f"the checkpoint {str(path)!r} was written with other generating "
                         f"parameters ({ck_key}); delete it or pass another checkpoint path")
    done = min(max(ck_done, 0), n)
    if saved.shape[1:] != tuple(shape) or saved.shape[0] < done:
        raise ValueError(f"the checkpoint {str(path)!r} holds arrays of another shape; "
                         "delete it to start over")
    return saved[:done], done


def run_resumable(chunks: Chunks, n: int, shape: Sequence[int], *,
                  checkpoint: str | os.PathLike[str] | None, key: str, every: int = 50,
                  progress: bool = False, desc: str = "", unit: str = "it") -> np.ndarray:
    """Fill an ``(n, *shape)`` float64 array from ``chunks(start)``, resumably.

    Parameters
    ----------
    chunks
        ``chunks(start)`` yields ``(first index, solutions)`` in order, covering
        ``start..n-1`` (:func:`sample_chunks` builds it from a one-sample solve).
    n, shape
        Number of samples and the shape of one.
    checkpoint
        ``None`` or an ``.npz`` path: the solutions done so far are written there (atomically,
        every ``every`` samples), a later call with the same ``key`` continues from them, and
        the file is deleted when the loop completes.
    key
        The generating parameters (a JSON string): a checkpoint with another key is refused.
    every, progress, desc, unit
        Checkpoint period in samples; a tqdm bar and its label and unit.

    Raises
    ------
    FileNotFoundError
        If the checkpoint's folder does not exist.
    ValueError
        If the checkpoint is unreadable, of other generating parameters, or of another shape.
    """
    from tqdm.auto import tqdm

    shape = tuple(int(s) for s in shape)
    out = np.empty((n, *shape))
    done = 0
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None:
        if not path.parent.is_dir():
            raise FileNotFoundError(f"the folder of the checkpoint {str(path)!r} does not exist")
        if path.exists():
            saved, done = _read_ck(path, key, n, shape)
            out[:done] = saved
    last = done
    with tqdm(total=n, initial=done, desc=desc, unit=unit, disable=not progress) as bar:
        if done < n:
            for first, sol in chunks(done):
                out[first:first + sol.shape[0]] = sol
                done = first + sol.shape[0]
                bar.update(sol.shape[0])
                if path is not None and done - last >= every and done < n:
                    _write_ck(path, out, done, key)
                    last = done
    if path is not None:
        path.unlink(missing_ok=True)
    return out


def pool_chunks(fn: Callable[[Any], np.ndarray], jobs: Sequence[Any], starts: Sequence[int],
                workers: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(starts[i], fn(jobs[i]))`` in order, computed by ``workers`` spawned processes.

    ``fn`` and the jobs must be picklable. On any exception in the consumer (Ctrl-C, SIGTERM
    turned into an exception, an error) the workers are terminated instead of finishing the
    queue; a worker also exits when its parent process is gone.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        yield from zip(starts, pool.map(fn, jobs), strict=True)
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as the parent process is gone (even after SIGKILL,
    which runs no cleanup in the parent), instead of finishing the queued chunks."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _one(solve: Callable[[int], np.ndarray], i: int) -> np.ndarray:
    return np.asarray(solve(i))[None]


def sample_chunks(solve: Callable[[int], np.ndarray], n: int, workers: int = 1) -> Chunks:
    """Chunks of one sample each from ``solve(i)`` (in ``workers`` processes when > 1; then
    ``solve`` must be picklable: a module-level function or a :func:`functools.partial` of one).
    """
    import functools

    def chunks(start: int) -> Iterator[tuple[int, np.ndarray]]:
        if workers == 1 or n - start == 1:
            for i in range(start, n):
                yield i, _one(solve, i)
            return
        yield from pool_chunks(functools.partial(_one, solve), range(start, n),
                               range(start, n), workers)

    return chunks
