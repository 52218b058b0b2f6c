"""Dataset registry: each dataset is a function that builds a :class:`TrackIndex`.

A dataset module registers itself with ``@DATASETS.register("name", description=...)`` on a
function ``fn(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex``. The ``fetch``
stage (:mod:`genre_cli.fetch`) calls it and writes the index artifact.

Two more registration keywords say how a dataset uses :class:`FetchOptions` (so that no option
is silently ignored and the index's fingerprint holds only what changes it):

* ``options`` -- the names of the options it takes besides :data:`RUN_OPTIONS`; any other option
  set to a non-default value is refused (:func:`check_options`);
* ``random_split`` -- ``fn(source, options) -> bool``: whether its split is drawn at random, so
  that the seed and the fractions change it (:func:`seed_used`; default: True).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.options import Config, Option, opt
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
    "status": "str",  # "ok" | "corrupt" | "missing" | "excluded"
    "reason": "str",  # why not ok; "" when ok
}

SPLITS = ("train", "validation", "test")
#: The splits a model can be scored on (``genre evaluate --split``, ``genre run --split``).
SCORE_SPLITS = ("test", "validation", "train", "all")
#: The option naming the split to score, declared once for ``evaluate`` and ``run``.
SCORE_SPLIT_OPTION = Option("split", str, "test", "Split to score: test | validation | train | all.", flag="--split", choices=SCORE_SPLITS)


def check_score_split(name: str) -> str:
    """``name`` if it is a split a model can be scored on; :class:`UsageError` otherwise (with a
    pointer to ``--split-mode`` when ``name`` is a way of making splits)."""
    try:
        return SCORE_SPLIT_OPTION.check(name)
    except UsageError as exc:
        hint = f"--split names the split to score; to make a {name} split use --split-mode {name}" if name in SPLIT_MODES else None
        raise UsageError(exc.message, hint=hint) from None


#: How the train/validation/test split of an index is made (``genre fetch --split-mode``).
SPLIT_MODES = ("default", "random", "official")

#: Split names accepted in tables and split-list file names, and what they mean.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "tr": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "development": "validation",
    "test": "test",
    "testing": "test",
    "eval": "test",
    "evaluation": "test",
}


def normalize_split(value: str) -> str | None:
    """Map a split name from a table to train/validation/test; ``""`` stays ``""``; None if unknown."""
    v = (value or "").strip().lower()
    if not v:
        return ""
    return SPLIT_ALIASES.get(v)


def split_of_filename(name: str) -> str | None:
    """The split a split-list file is for, from its name: the longest alias (:data:`SPLIT_ALIASES`)
    the name starts with or holds after ``_`` / ``-`` (``train_filtered.txt``, ``gtzan-test.txt``);
    None when there is none."""
    name = name.lower()
    for alias in sorted(SPLIT_ALIASES, key=len, reverse=True):
        if name.startswith(alias) or f"_{alias}" in name or f"-{alias}" in name:
            return SPLIT_ALIASES[alias]
    return None


@dataclass(frozen=True)
class FetchOptions(Config):
    """Options of ``genre fetch``; each dataset uses the ones that apply to it.

    ``split``: ``"default"`` (the dataset's honest default: GTZAN's artist-filtered split,
    a table's own split column, else stratified by track), ``"random"`` (stratified by
    track, seeded; group-aware when ``group_by`` is set) or ``"official"``; on the command
    line ``--split-mode`` (``--split`` names the split a model is scored on).
    """

    labels_csv: Path | None = opt(
        None, "--labels", "CSV with a `path` column (relative to --from) and labels.", nullable=True, cli_type=Path
    )
    label_column: str = opt("label", "--label-column", "Label column of --labels.", type=str)
    split_column: str = opt("split", "--split-column", "Split column of --labels (used when present).", type=str)
    group_by: str | None = opt(
        None, "--group-by", "Column naming a group (artist, performer): no group on two sides.", type=str, nullable=True
    )
    folds: int = opt(0, "--folds", "Also assign K group-aware stratified folds (0: none).", type=int, minimum=0, metavar="K")
    split: str = opt(
        "default",
        "--split-mode",
        "How splits are made: default (the dataset's honest split) | random "
        "(stratified by track, seeded; group-aware with --group-by) | official.",
        type=str,
        choices=SPLIT_MODES,
    )
    seed: int = opt(0, "--seed", "Seed of random splits and folds.", type=int)
    val_fraction: float = opt(0.15, None, "Validation share of a random split.", type=float, minimum=0)
    test_fraction: float = opt(0.15, None, "Test share of a random split.", type=float, minimum=0)
    jobs: int = opt(2, None, "Threads probing and hashing the files.", type=int, minimum=1)
    offline: bool = opt(False, "--offline", "Never download; use what is on disk.", type=bool)
    checksum: str | None = opt(None, "--checksum", "Expected md5:HEX or sha256:HEX of a downloaded archive.", type=str, nullable=True)
    progress: bool = opt(True, None, "Show progress bars.", type=bool)

    def check(self) -> None:
        for name in ("val_fraction", "test_fraction"):
            frac = getattr(self, name)
            if not 0.0 <= frac < 1.0:
                raise UsageError(f"{name} must be in [0, 1), got {frac}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UsageError(f"val_fraction + test_fraction must be < 1, got {self.val_fraction + self.test_fraction}")
        if self.folds == 1:
            raise UsageError("folds (--folds) must be 0 (off) or >= 2, got 1")


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
    def from_rows(cls, rows: list[dict[str, Any]], *, root: Path, labels: list[str], info: dict | None = None) -> TrackIndex:
        """Build from row dicts; missing columns get defaults (-1, "", 0, "ok")."""
        defaults = {
            "label": -1,
            "group": "",
            "split": "",
            "fold": -1,
            "duration": 0.0,
            "sr": 0,
            "channels": 0,
            "checksum": "",
            "status": "ok",
            "reason": "",
        }
        cols: dict[str, np.ndarray] = {}
        for name, kind in TRACK_COLUMNS.items():
            values = [r.get(name, defaults.get(name)) for r in rows]
            dtype = {"str": object, "int": np.int64, "float": np.float64}[kind]
            cols[name] = np.array(values, dtype=dtype) if rows else np.zeros(0, dtype=dtype)
        return cls(root=Path(root), labels=list(labels), tracks=cols, info=dict(info or {}))


#: Options about how fetch runs, not about the index: every dataset takes them.
RUN_OPTIONS = ("jobs", "progress", "offline")


def check_options(name: str, options: FetchOptions) -> None:
    """Refuse (:class:`UsageError`) the options that dataset ``name`` does not take (its
    ``options`` registration keyword) when they are set to anything but their default."""
    _load_all()
    takes = DATASETS.meta(name).get("options")
    if takes is None:
        return
    default = FetchOptions()
    spelled = {o.name: o.flag or o.name for o in FetchOptions.options()}
    given = [o.name for o in FetchOptions.options() if getattr(options, o.name) != getattr(default, o.name)]
    refused = [n for n in given if n not in takes and n not in RUN_OPTIONS]
    if refused:
        accepted = ", ".join(spelled[n] for n in spelled if n in takes and spelled[n].startswith("--"))
        raise UsageError(
            f"the {name} dataset does not take {', '.join(spelled[n] for n in refused)}",
            hint=f"its options: {accepted}" if accepted else None,
        )


def random_split(name: str, source: str | None, options: FetchOptions) -> bool:
    """Whether the split dataset ``name`` makes with ``options`` is drawn at random (seed and
    fractions matter), rather than fixed by the dataset or a table."""
    _load_all()
    fn = DATASETS.meta(name).get("random_split")
    return True if fn is None else bool(fn(source, options))


def seed_used(name: str, source: str | None, options: FetchOptions) -> bool:
    """Whether ``options.seed`` changes the index: a random split, or folds."""
    return options.folds >= 2 or random_split(name, source, options)


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
