"""Probe many audio files in parallel (header only: duration, sample rate, channels).

Threads are enough: libsndfile (via soundfile) releases the GIL while it reads.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TypeVar

from genre_cli.audio import AudioInfo, probe
from genre_cli.errors import AudioError

__all__ = ["probe_many", "md5_many", "parallel_map"]

T = TypeVar("T")
R = TypeVar("R")


def probe_many(paths: list[Path], *, jobs: int, progress: bool) -> list[AudioInfo | AudioError]:
    """:func:`genre_cli.audio.probe` each path with ``jobs`` threads; order preserved.

    A file that cannot be probed yields its :class:`AudioError` in its slot; nothing raises.
    """
    return parallel_map(_probe_one, list(paths), jobs=jobs, progress=progress, desc="probe")


def md5_many(paths: list[Path], *, jobs: int, progress: bool = False) -> list[str]:
    """``"md5:<hex>"`` of each file (``""`` for one that cannot be read or is not a regular
    file); order preserved."""
    return parallel_map(_md5_one, list(paths), jobs=jobs, progress=progress, desc="md5")


def parallel_map(fn: Callable[[T], R], items: list[T], *, jobs: int, progress: bool, desc: str = "") -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool of ``jobs`` workers, with a progress bar.

    ``fn`` must not raise (wrap errors into return values).
    """
    from tqdm import tqdm

    jobs = max(1, int(jobs or 1))
    results: list[R | None] = [None] * len(items)
    with tqdm(total=len(items), desc=desc, unit="file", disable=not progress or not items, leave=False) as bar:
        if jobs == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = fn(item)
                bar.update(1)
        else:
            with ThreadPoolExecutor(max_workers=min(jobs, len(items))) as pool:
                futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update(1)
    return results  # type: ignore[return-value]


def _probe_one(path: Path) -> AudioInfo | AudioError:
    try:
        return probe(path)
    except AudioError as exc:
        return exc
    except Exception as exc:  # anything unexpected from a decoder backend is still "unreadable"
        text = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        return AudioError(f"{path}: cannot be probed ({text})")


def _md5_one(path: Path) -> str:
    h = hashlib.md5()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ""  # a FIFO would block the read forever; directories and devices are not tracks
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return f"md5:{h.hexdigest()}"
