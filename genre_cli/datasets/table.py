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
    seed: int = opt(0, "--seed", "With --split-mode random: seed of the split.", type=int)
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
        }


def read_table(
    path: Path, *, label_column: str, id_column: str, drop_columns: tuple[str, ...]
) -> tuple[list[str], list[str], list[str], np.ndarray, list[dict[str, str]]]:
    """(ids, labels, feature column names, values [shape=(n, d)], raw rows)."""
    if not path.is_file():
        raise InputError(f"{path}: no such table")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    for col in (label_column, id_column):
        if col not in header:
            raise InputError(f"{path}: no column {col!r} (columns: {', '.join(header[:8])}...)")
    if not rows:
        raise InputError(f"{path}: the table has a header but no rows; nothing to import")
    skip = {label_column, id_column, "split", *drop_columns}
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
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: the table contains NaN or infinite values")
    ids = [clip_id(r[id_column]) for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate ids in column {id_column!r}")
    return ids, [r[label_column] for r in rows], cols, values, rows


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

        out, notes = stratified_split(labels, val_fraction=options.val_fraction, test_fraction=options.test_fraction, seed=seed)
        warnings += notes
        method = f"random stratified by track (seed {seed}, test {options.test_fraction:g}, validation {options.val_fraction:g})"
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
