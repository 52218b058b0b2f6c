"""Dataset registry: each dataset is a function that builds a :class:`TrackIndex`.

A dataset module registers itself with ``@DATASETS.register("name", description=...)`` on a
function ``fn(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex``. The ``fetch``
stage (:mod:`genre_cli.fetch`) calls it and writes the index artifact.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.registry import Registry

DATASETS: Registry = Registry("dataset")

#: Modules that register datasets; imported on first use of the registry.
_MODULES = ("demo", "folder", "gtzan")

#: Columns of the ``tracks`` table of an index artifact, with their dtype kind.
TRACK_COLUMNS: dict[str, str] = {
    "track_id": "str",  # unique id within the dataset
    "path": "str",  # relative to TrackIndex.root
    "label": "int",  # index into TrackIndex.labels; -1 unknown
    "group": "str",  # artist / performer / album; "" unknown
    "split": "str",  # train / validation / test / "" (unassigned, e.g. outside GTZAN's filtered 930)
    "fold": "int",  # k-fold assignment, -1 when not used
    "duration": "float",  # seconds
    "sr": "int",  # native sample rate (Hz)
    "channels": "int",
    "checksum": "str",  # e.g. "md5:..." or ""
    "status": "str",  # "ok" | "corrupt" | "excluded"
    "reason": "str",  # why not ok; "" when ok
}

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class FetchOptions:
    """Options of ``genre fetch``; each dataset uses the ones that apply to it.

    ``split``: ``"default"`` (the dataset's honest default: GTZAN's artist-filtered split,
    a table's own split column, else stratified by track), ``"random"`` (stratified by
    track, seeded; group-aware when ``group_by`` is set) or ``"official"``.
    """

    labels_csv: Path | None = None
    label_column: str = "label"
    split_column: str = "split"
    group_by: str | None = None
    folds: int = 0
    split: str = "default"
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    jobs: int = 2
    offline: bool = False
    checksum: str | None = None  # expected "md5:..." / "sha256:..." of a downloaded archive
    progress: bool = True


@dataclass
class TrackIndex:
    """One row per track, plus the label names and where the audio lives."""

    root: Path
    labels: list[str]
    tracks: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = {len(v) for v in self.tracks.values()}
        if len(n) > 1:
            raise ValueError(f"track columns have different lengths: {n}")
        missing = set(TRACK_COLUMNS) - set(self.tracks)
        if missing:
            raise ValueError(f"track table misses columns {sorted(missing)}")

    def __len__(self) -> int:
        return len(self.tracks["track_id"])

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], *, root: Path, labels: list[str], info: dict | None = None) -> "TrackIndex":
        """Build from row dicts; missing columns get defaults (-1, "", 0, "ok")."""
        defaults = {"label": -1, "group": "", "split": "", "fold": -1, "duration": 0.0, "sr": 0, "channels": 0, "checksum": "", "status": "ok", "reason": ""}
        cols: dict[str, np.ndarray] = {}
        for name, kind in TRACK_COLUMNS.items():
            values = [r.get(name, defaults.get(name)) for r in rows]
            dtype = {"str": object, "int": np.int64, "float": np.float64}[kind]
            cols[name] = np.array(values, dtype=dtype) if rows else np.zeros(0, dtype=dtype)
        return cls(root=Path(root), labels=list(labels), tracks=cols, info=dict(info or {}))


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"genre_cli.datasets.{mod}")
        except ModuleNotFoundError as exc:  # a dataset module not written yet
            if exc.name != f"genre_cli.datasets.{mod}":
                raise


def get_dataset(name: str):
    """The registered dataset function ``name`` (UsageError listing valid names if unknown)."""
    _load_all()
    return DATASETS.get(name)


def list_datasets() -> list[str]:
    _load_all()
    return DATASETS.names()
