"""A precomputed feature table (CSV) as a dataset: its options, rows and splits.

Used by ``genre featurize --table CSV`` (the stage :mod:`genre_cli.table`).

For tables such as the Kaggle GTZAN ``features_30_sec.csv`` (one row per track: an id
column, numeric feature columns, a label column), so the classical baselines run on it
directly. The result has the layout of any features artifact with a single vector feature
``table`` (one "segment" per track), so ``train`` and ``evaluate`` treat it like the others.

Splits, in order of precedence:

1. ``split_files``: lists of ids (lines like ``blues/blues.00012.wav``); the split name is
   taken from each file's name (``train*``, ``valid*``/``val*``/``dev*``, ``test*``).
2. ``split="random"``: stratified by label, seeded; each row is a whole track so it is still
   a split by track. For GTZAN this prints a warning: random GTZAN splits inflate accuracy.
3. default: GTZAN-style ids (``blues.00012``) get the artist-filtered split shipped with the
   package; otherwise the table's own ``split`` column; otherwise an error asking for one.

Rows left out of the split lists are kept with split ``""`` (marked, never trained or
scored on).

Groups: ``group_by`` names a column of the table holding a group (artist, performer); it is
recorded per track, makes a random split group-aware and keeps each group in one fold. The
Kaggle GTZAN tables have no artist column, so their folds and random splits are by track.

Folds: ``folds = K`` (K >= 2) assigns K stratified folds (:func:`genre_cli.datasets.folder.assign_folds`,
as ``genre fetch --folds``) over the rows that have a split, so ``genre cv`` can use the
import; rows in no split (GTZAN's 70 repeats and versions outside the artist-filtered split)
are in no fold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.datasets import SPLIT_MODES, normalize_split, split_of_filename
from genre_cli.datasets.gtzan import RANDOM_WARNING as RANDOM_GTZAN_WARNING
from genre_cli.datasets.gtzan import clip_id, filtered_split, is_gtzan
from genre_cli.errors import InputError, UsageError
from genre_cli.options import Config, opt


@dataclass(frozen=True)
class TableOptions(Config):
    """Options of ``genre featurize --table CSV`` (split by ``--split-mode``, as ``genre fetch``)."""

    split_files: tuple[Path, ...] = opt(
        (),
        "--split-file",
        "With --table: id list per split (train*/valid*/test* by file name), repeatable.",
        cli_type=list[Path],
        parse=lambda v: tuple(v or ()),
        cli_default=None,
    )
    split: str = opt(
        "default",
        "--split-mode",
        "With --table: default (GTZAN ids: artist-filtered; else the table's split column) | random | official.",
        type=str,
        choices=SPLIT_MODES,
        deprecated=("--table-split",),
    )
    test_fraction: float = opt(0.2, "--test-fraction", "With --split-mode random: test share.", type=float, minimum=0, maximum=0.9)
    val_fraction: float = opt(
        0.0, "--val-fraction", "With --split-mode random: validation share (for early stopping/tuning).", type=float, minimum=0, maximum=0.9
    )
    seed: int = opt(0, "--seed", "With --split-mode random or --folds: seed of the split and folds.", type=int)
    folds: int = opt(
        0, "--folds", "With --table: also assign K stratified folds for `genre cv` (0: none).", type=int, minimum=0, metavar="K"
    )
    group_by: str | None = opt(
        None,
        "--group-by",
        "With --table: column naming a group (artist): no group on two sides of a random split, nor in two folds.",
        type=str,
        nullable=True,
    )
    label_column: str = opt("label", "--label-column", "With --table: label column.", type=str)
    id_column: str = opt("filename", "--id-column", "With --table: id column.", type=str)
    drop_columns: tuple[str, ...] = opt(("length",), None, "Non-feature columns besides id and label (Kaggle's length).")

    def params(self, csv_path: Path) -> dict[str, Any]:
        """The fingerprinted parameters of an import of ``csv_path`` (paths resolved)."""
        return {
            "table": str(csv_path.resolve()),
            "split_files": [str(Path(p).resolve()) for p in self.split_files],
            "split": self.split,
            "test_fraction": self.test_fraction,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "label_column": self.label_column,
            "id_column": self.id_column,
            "drop_columns": list(self.drop_columns),
            "folds": self.folds,
            "group_by": self.group_by,
        }

    def check(self) -> None:
        if self.folds == 1:
            raise UsageError("folds (--folds) must be 0 (off) or >= 2, got 1")


def read_table(
    path: Path, *, label_column: str, id_column: str, drop_columns: tuple[str, ...], group_column: str | None = None
) -> tuple[list[str], list[str], list[str], np.ndarray, list[dict[str, str]]]:
    """(ids, labels, feature column names, values [shape=(n, d)], raw rows); ``group_column``
    (when given) must be a column of the table and is not a feature."""
    if not path.is_file():
        raise InputError(f"{path}: no such table")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    for col in (label_column, id_column, *([group_column] if group_column else [])):
        if col not in header:
            shown = ", ".join(header[:8]) + ("..." if len(header) > 8 else "")
            raise InputError(f"{path}: no column {col!r} (columns: {shown})")
    if not rows:
        raise InputError(f"{path}: the table has a header but no rows; nothing to import")
    skip = {label_column, id_column, "split", *drop_columns, *([group_column] if group_column else [])}
    cols = [c for c in header if c not in skip]
    if not cols:
        raise InputError(f"{path}: no feature columns besides {', '.join(sorted(c for c in skip if c in header))}; nothing to import")
    values = np.empty((len(rows), len(cols)), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            try:
                values[i, j] = float(r[c])
            except (TypeError, ValueError):
                raise InputError(f"{path}: row {i + 2}, column {c!r}: {r[c]!r} is not a number") from None
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        i, j = bad[0]
        more = f" ({len(bad)} such cells in all)" if len(bad) > 1 else ""
        raise InputError(f"{path}: row {i + 2}, column {cols[j]!r}: {rows[i][cols[j]]!r} is not a finite number{more}")
    ids = [clip_id(r[id_column]) for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate ids in column {id_column!r}")
    return ids, [r[label_column] for r in rows], cols, values, rows


def groups_of(rows: list[dict[str, str]], options: TableOptions) -> np.ndarray | None:
    """The group of each row (``options.group_by`` column; ``""`` unknown), or None without one."""
    if not options.group_by:
        return None
    return np.array([(r.get(options.group_by) or "").strip() for r in rows], dtype=object)


def assign_folds(
    ids: list[str], labels: np.ndarray, splits: np.ndarray, groups: np.ndarray | None, options: TableOptions
) -> tuple[np.ndarray, list[str]]:
    """Fold per row (-1: none; see the module docstring) and warnings."""
    from genre_cli.datasets.folder import assign_folds as folds_of

    fold = np.full(len(ids), -1, dtype=np.int64)
    if options.folds < 2:
        return fold, []
    use = np.flatnonzero(splits != "")
    fold[use] = folds_of(np.asarray(labels)[use], groups=None if groups is None else groups[use], k=options.folds, seed=options.seed)
    notes = []
    if groups is None and is_gtzan(ids):
        notes.append("GTZAN has no artist column here: folds are stratified by track only, so an artist can be in several folds")
    return fold, notes


def assign_splits(
    ids: list[str], labels: np.ndarray, rows: list[dict[str, str]], options: TableOptions
) -> tuple[np.ndarray, str, list[str]]:
    """Split per row, the method used, and warnings (see the module docstring)."""
    split_files, split, seed = list(options.split_files), options.split, options.seed
    gtzan_like = is_gtzan(ids)
    warnings: list[str] = []
    if split_files:
        lookup: dict[str, str] = {}
        for f in split_files:
            name = split_of_filename(Path(f).name)
            if name is None:
                raise UsageError(f"cannot tell the split of {Path(f).name}: name it train*, valid*/val*/dev* or test*")
            try:
                lines = Path(f).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InputError(f"{f}: cannot read split list ({exc.strerror})") from None
            for line in lines:
                if line.strip():
                    lookup[clip_id(line)] = name
        method = "lists: " + ", ".join(Path(f).name for f in split_files)
        out = np.array([lookup.get(i, "") for i in ids], dtype=object)
    elif split == "random":
        from genre_cli.datasets.folder import stratified_split

        groups = groups_of(rows, options)
        out, notes = stratified_split(
            labels, groups=groups, val_fraction=options.val_fraction, test_fraction=options.test_fraction, seed=seed
        )
        warnings += notes
        by = f"stratified by label, grouped by {options.group_by!r}" if groups is not None else "stratified by track"
        method = f"random {by} (seed {seed}, test {options.test_fraction:g}, validation {options.val_fraction:g})"
        if gtzan_like:
            warnings.append(RANDOM_GTZAN_WARNING)
    elif split in ("default", "official"):
        if gtzan_like and split == "default":
            lookup = filtered_split()
            out = np.array([lookup.get(i, "") for i in ids], dtype=object)
            method = "GTZAN artist-filtered (Kereliuk, Sturm & Larsen 2015)"
        elif rows and "split" in rows[0]:
            out = np.array([normalize_split(r["split"]) for r in rows], dtype=object)
            method = "the table's split column"
        else:
            raise UsageError("the table has no split column", hint="give --split-file lists or --split-mode random")
    n_out = int(np.sum(out == ""))
    if n_out:
        warnings.append(f"{n_out} rows are in no split (kept, marked, never trained or scored on)")
    return out, method, warnings
