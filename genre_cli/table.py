"""``genre featurize --table CSV``: import a precomputed feature table as a features artifact.

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
import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import InputError, UsageError
from genre_cli.stage import StageResult, execute, slugify

_GTZAN_ID = re.compile(r"^[a-z]+\.\d{5}$")
_SPLIT_NAMES = (("train", "train"), ("valid", "validation"), ("val", "validation"), ("dev", "validation"), ("test", "test"))
RANDOM_GTZAN_WARNING = (
    "random splits of GTZAN put songs of the same artist (and repeated clips) on both sides and inflate "
    "accuracy by roughly 20 points; the artist-filtered split is the honest default"
)


def track_id(name: str) -> str:
    """``blues/blues.00012.wav`` → ``blues.00012`` (directory and audio extension dropped)."""
    stem = name.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"\.(wav|au|mp3|ogg|flac)$", "", stem, flags=re.IGNORECASE)


def _split_name(path: Path) -> str:
    name = path.name.lower()
    for key, split in _SPLIT_NAMES:
        if name.startswith(key) or f"_{key}" in name or f"-{key}" in name:
            return split
    raise UsageError(f"cannot tell the split of {path.name}: name it train*, valid*/val*/dev* or test*")


def read_table(path: Path, *, label_column: str, id_column: str, drop_columns: tuple[str, ...]) -> tuple[list[str], list[str], list[str], np.ndarray, list[dict[str, str]]]:
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
    skip = {label_column, id_column, "split", *drop_columns}
    cols = [c for c in header if c not in skip]
    values = np.empty((len(rows), len(cols)), dtype=np.float64)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            try:
                values[i, j] = float(r[c])
            except (TypeError, ValueError):
                raise InputError(f"{path}: row {i + 2}, column {c!r}: {r[c]!r} is not a number") from None
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: the table contains NaN or infinite values")
    ids = [track_id(r[id_column]) for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: duplicate ids in column {id_column!r}")
    return ids, [r[label_column] for r in rows], cols, values, rows


def assign_splits(ids: list[str], labels: np.ndarray, rows: list[dict[str, str]], *, split_files: list[Path], split: str,
                  test_fraction: float, val_fraction: float, seed: int) -> tuple[np.ndarray, str, list[str]]:
    """Split per row, the method used, and warnings."""
    gtzan_like = bool(ids) and all(_GTZAN_ID.match(i) for i in ids)
    warnings: list[str] = []
    if split_files:
        lookup: dict[str, str] = {}
        for f in split_files:
            name = _split_name(Path(f))
            try:
                lines = Path(f).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InputError(f"{f}: cannot read split list ({exc.strerror})") from None
            for line in lines:
                if line.strip():
                    lookup[track_id(line)] = name
        method = "lists: " + ", ".join(Path(f).name for f in split_files)
        out = np.array([lookup.get(i, "") for i in ids], dtype=object)
    elif split == "random":
        from genre_cli.datasets.folder import stratified_split

        out, notes = stratified_split(labels, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        warnings += notes
        method = f"random stratified by track (seed {seed}, test {test_fraction:g}, validation {val_fraction:g})"
        if gtzan_like:
            warnings.append(RANDOM_GTZAN_WARNING)
    elif split in ("default", "official"):
        if gtzan_like and split == "default":
            from genre_cli.datasets.gtzan import filtered_split

            lookup = filtered_split()
            out = np.array([lookup.get(i, "") for i in ids], dtype=object)
            method = "GTZAN artist-filtered (Kereliuk, Sturm & Larsen 2015)"
        elif rows and "split" in rows[0]:
            from genre_cli.datasets.folder import normalize_split

            out = np.array([normalize_split(r["split"]) for r in rows], dtype=object)
            method = "the table's split column"
        else:
            raise UsageError("the table has no split column", hint="give --split-file lists or --split random")
    else:
        raise UsageError(f"unknown split {split!r}; use default, official or random")
    n_out = int(np.sum(out == ""))
    if n_out:
        warnings.append(f"{n_out} rows are in no split (kept, marked, never trained or scored on)")
    return out, method, warnings


def run(
    csv_path: str | Path,
    *,
    split_files: list[str | Path] | None = None,
    split: str = "default",
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    seed: int = 0,
    label_column: str = "label",
    id_column: str = "filename",
    drop_columns: tuple[str, ...] = ("length",),
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> StageResult:
    """Import ``csv_path`` as a features artifact with one vector feature, ``table``.

    Parameters
    ----------
    split_files : list of path
        Id lists per split (see module docstring).
    split : {"default", "official", "random"}
    test_fraction, val_fraction : float in [0, 1)
        For ``split="random"``.
    drop_columns : tuple of str
        Non-feature columns besides id and label (Kaggle's ``length``).

    Returns
    -------
    StageResult
        ``summary``: ``n_rows``, ``n_features``, ``split_method``, ``counts`` (split → n).
    """
    csv_path = Path(csv_path)
    split_files = [Path(f) for f in (split_files or [])]
    digest = hashlib.sha256()
    for p in [csv_path, *split_files]:
        try:
            digest.update(p.read_bytes())
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    params = {
        "table": str(csv_path.resolve()), "split_files": [str(p.resolve()) for p in split_files], "split": split,
        "test_fraction": test_fraction, "val_fraction": val_fraction, "seed": seed, "label_column": label_column,
        "id_column": id_column, "drop_columns": list(drop_columns),
    }
    ids, label_names, cols, values, rows = read_table(csv_path, label_column=label_column, id_column=id_column, drop_columns=drop_columns)
    labels = sorted(set(label_names))
    y = np.array([labels.index(v) for v in label_names], dtype=np.int64)
    splits, method, warnings = assign_splits(ids, y, rows, split_files=split_files, split=split, test_fraction=test_fraction, val_fraction=val_fraction, seed=seed)
    gtzan_like = bool(ids) and all(_GTZAN_ID.match(i) for i in ids)
    dataset = "gtzan-table" if gtzan_like else slugify(csv_path.stem)

    def build(f) -> dict[str, Any]:
        n = len(ids)
        x = values.astype(np.float32)
        ds = f.create_group("features").create_dataset("table", data=x)
        ds.attrs["columns"] = artifacts.canonical_json(cols)
        train = splits == "train"
        ref = x[train] if train.any() else x
        g = f.create_group("norm").create_group("table")
        g.create_dataset("mean", data=ref.astype(np.float64).mean(0).astype(np.float32))
        std = ref.astype(np.float64).std(0)
        std[std < 1e-12] = 1.0
        g.create_dataset("std", data=std.astype(np.float32))
        id_arr = np.array(ids, dtype=object)
        empty = np.array([""] * n, dtype=object)
        common = {"track_id": id_arr, "label": y, "group": empty, "split": splits, "fold": np.full(n, -1, dtype=np.int64)}
        artifacts.write_table(f, "segments", {"track": np.arange(n, dtype=np.int64), "start": np.zeros(n, dtype=np.int64), "length": np.zeros(n, dtype=np.int64), **common})
        artifacts.write_table(f, "tracks", {"path": np.array([r[id_column] for r in rows], dtype=object), **common})
        counts = {s or "-": int(np.sum(splits == s)) for s in ("train", "validation", "test", "")}
        return {"n_rows": n, "n_features": len(cols), "split_method": method, "counts": counts, "shapes": {"table": [n, len(cols)]}, "warnings": warnings}

    return execute(
        stage="featurize", params=params, upstream={"table": (digest.hexdigest(), csv_path)}, build=build, out=out,
        workdir=workdir, dataset=dataset, slug=f"table-{slugify(csv_path.stem)}-{split}", force=force, dry_run=dry_run,
        attrs={"labels": labels, "feature_config": {"table": str(csv_path.name), "columns": len(cols)}, "segment_config": {}, "split_method": method},
    )
