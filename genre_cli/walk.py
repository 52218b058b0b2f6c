"""Walking a music folder: the one rule ``genre fetch folder`` and ``genre predict`` share.

* Sorted, top-down: a folder's files (by name), then its sub-folders (by name), the order
  :func:`os.walk` gives.
* Hidden entries (a name starting with ``.``: macOS ``._x.wav`` AppleDouble files,
  ``.DS_Store``, ``.git/``) are skipped, folders without being entered.
* Symlinked folders are followed (``ln -s /mnt/more-music lib/more``), each directory at most
  once, by ``(st_dev, st_ino)``: a link to a folder inside the walked one (reached by its
  real path anyway), to a folder containing it (a loop, e.g. ``loop -> ..``) or to one
  already walked through another link is not entered again. A loop is not an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def walk_files(root: Path, *, hidden: bool = False, on_hidden: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Every file under ``root`` (recursive), lazily, in the order described above.

    Parameters
    ----------
    root : Path
        A folder (a symlink to one is fine).
    hidden : bool
        Keep hidden files and enter hidden folders too (a listing that must see everything).
    on_hidden : callable or None
        Called with each hidden file or folder skipped (a folder once, its contents unseen).

    Yields
    ------
    Path
        ``root / relative path``, through the links followed (never resolved): what a user
        sees under ``root``. Entries that are neither folders nor followed links to folders
        (files, FIFOs, dangling or looping file links) are yielded as files; reading them says
        what they are.
    """
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    try:
        st = os.stat(root)
        seen.add((st.st_dev, st.st_ino))
    except OSError:
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if not hidden and d.startswith("."):
                if on_hidden is not None:
                    on_hidden(Path(full))
                continue
            if os.path.islink(full):
                target = os.path.realpath(full)
                if _inside(target, real_root) or _inside(real_root, target):
                    continue  # walked by its real path, or a loop back to (or above) the root
            try:
                st = os.stat(full)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue  # reached twice through links, or a loop
            seen.add((st.st_dev, st.st_ino))
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not hidden and name.startswith("."):
                if on_hidden is not None:
                    on_hidden(Path(dirpath) / name)
                continue
            yield Path(dirpath) / name
