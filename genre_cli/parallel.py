"""Bounded, order-preserving parallel map (threads): memory stays bounded on huge inputs."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def ordered_map(fn: Callable[[A], B], items: Iterable[A], *, jobs: int = 1, window: int | None = None, executor: Executor | None = None) -> Iterator[B]:
    """Yield ``fn(item)`` in input order, computing at most ``window`` items ahead.

    With ``jobs <= 1`` and no executor it runs inline. Exceptions propagate from the item
    that raised them (callers that must not stop wrap ``fn``).
    """
    if jobs <= 1 and executor is None:
        for item in items:
            yield fn(item)
        return
    window = window or 2 * max(jobs, 1)
    own = executor is None
    ex = executor or ThreadPoolExecutor(max_workers=jobs)
    pending: deque = deque()
    try:
        for item in items:
            pending.append(ex.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        if own:
            ex.shutdown(wait=True, cancel_futures=True)
