"""Probe and hash many audio files in parallel (header only: duration, sample rate, channels).

Threads are enough: libsndfile (via soundfile) releases the GIL while it reads. The work is
:func:`genre_cli.parallel.ordered_map`, with a progress bar.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from genre_cli.audio import AudioInfo, probe
from genre_cli.errors import AudioError
from genre_cli.parallel import ordered_map
from genre_cli.ui import progress as progress_bar

__all__ = ["probe_many", "md5_many"]

T = TypeVar("T")
R = TypeVar("R")


def probe_many(paths: list[Path], *, jobs: int, progress: bool) -> list[AudioInfo | AudioError]:
    """:func:`genre_cli.audio.probe` each path with ``jobs`` threads; order preserved.

    A file that cannot be probed yields its :class:`AudioError` in its slot; nothing raises.
    """
    return _each(_probe_one, list(paths), jobs=jobs, progress=progress, desc="probe")


def md5_many(paths: list[Path], *, jobs: int, progress: bool = False) -> list[str]:
    """``"md5:<hex>"`` of each file (``""`` for one that cannot be read or is not a regular
    file); order preserved."""
    return _each(_md5_one, list(paths), jobs=jobs, progress=progress, desc="md5")


def _each(fn: Callable[[T], R], items: list[T], *, jobs: int, progress: bool, desc: str) -> list[R]:
    """``[fn(x) for x in items]`` on ``jobs`` threads, in order, with a progress bar (``fn`` must not raise)."""
    out: list[R] = []
    with progress_bar(len(items), desc, enabled=progress and bool(items), unit="files") as advance:
        for r in ordered_map(fn, items, jobs=max(1, int(jobs or 1))):
            out.append(r)
            advance(1)
    return out


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
