"""Bounded, order-preserving parallel map (threads): memory stays bounded on huge inputs."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def ordered_map(
    fn: Callable[[A], B], items: Iterable[A], *, jobs: int = 1, window: int | None = None, executor: Executor | None = None
) -> Iterator[B]:
    """Yield ``fn(item)`` in input order, computing at most ``window`` items ahead.

    With ``jobs <= 1`` and no executor it runs inline. Exceptions propagate from the item
    that raised them (callers that must not stop wrap ``fn``).
    """
    from genre_cli import interrupts

    if jobs <= 1 and executor is None:
        for item in items:
            interrupts.check()  # a swallowed Ctrl-C stops between items, not only at the commit
            yield fn(item)
        return
    window = window or 2 * max(jobs, 1)
    own = executor is None
    ex = executor or ThreadPoolExecutor(max_workers=jobs)
    pending: deque = deque()
    try:
        for item in items:
            interrupts.check()
            pending.append(ex.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            interrupts.check()
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        if own:
            ex.shutdown(wait=True, cancel_futures=True)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def process_context():
    """Start method for worker processes.

    ``spawn`` (a fresh interpreter: safe with threads, HDF5 and torch in the parent) whenever
    the children can re-import ``__main__`` — a program, ``python -m``, or a script file (which,
    as with any multiprocessing code, must guard its entry point with
    ``if __name__ == "__main__":``). When ``__main__`` is not importable (``python -`` reading
    stdin, ``python -c``, an interactive session or notebook), ``spawn`` cannot start
    children at all, so ``fork`` is used there.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    importable = getattr(main, "__spec__", None) is not None or (path is not None and os.path.isfile(path))
    if importable or "fork" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    return mp.get_context("fork")
