"""``genre featurize --table CSV``: import a precomputed feature table as a features artifact.

The table is read and split by :mod:`genre_cli.datasets.table`; the result has the layout of
any features artifact (:mod:`genre_cli.formats.features`) with a single vector feature
``table`` (one "segment" per track), so ``train`` and ``evaluate`` treat it like the others,
and its provenance names the table's split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.datasets.gtzan import is_gtzan
from genre_cli.datasets.table import TableOptions, assign_folds, assign_splits, groups_of, read_table
from genre_cli.errors import InputError
from genre_cli.formats import features as feat_format
from genre_cli.formats.provenance import Provenance
from genre_cli.stage import StageResult, execute, slugify


def run(
    csv_path: str | Path,
    *,
    options: TableOptions | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> StageResult:
    """Import ``csv_path`` as a features artifact with one vector feature, ``table``.

    Parameters
    ----------
    csv_path : path
        One row per track: an id column, numeric feature columns, a label column (and
        optionally a ``split`` column).
    options : TableOptions
        Split lists or split mode, fractions and seed of a random split, folds, group and other
        column names.

    Returns
    -------
    StageResult
        ``summary``: ``n_rows``, ``n_features``, ``split_method``, ``counts`` (split → n), ``folds``
        (fold → n rows; empty without ``options.folds``), ``fold_groups`` (the group column, or None).
    """
    options = options or TableOptions()
    csv_path = Path(csv_path)
    digest = hashlib.sha256()
    for p in [csv_path, *map(Path, options.split_files)]:
        try:
            digest.update(p.read_bytes())
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    params = options.params(csv_path)
    ids, label_names, cols, values, rows = read_table(
        csv_path,
        label_column=options.label_column,
        id_column=options.id_column,
        drop_columns=options.drop_columns,
        group_column=options.group_by,
    )
    labels = sorted(set(label_names))
    y = np.array([labels.index(v) for v in label_names], dtype=np.int64)
    splits, method, warnings = assign_splits(ids, y, rows, options)
    groups = groups_of(rows, options)
    folds, fold_notes = assign_folds(ids, y, splits, groups, options)
    warnings += fold_notes
    dataset = "gtzan-table" if is_gtzan(ids) else slugify(csv_path.stem)
    prov = Provenance(
        dataset=dataset,
        split_method=method,
        group_by=options.group_by,
        group_aware="grouped by" in method,
        folds=options.folds if options.folds >= 2 else 0,
    )

    def build(f) -> dict[str, Any]:
        n = len(ids)
        x = values.astype(np.float32)
        feat_format.write_feature(f, "table", x, columns=cols)
        train = splits == "train"
        ref = x[train] if train.any() else x
        feat_format.write_norm(
            f, {"table": feat_format.norm_stats(feat_format.moments(ref), len(cols))}, split="train" if train.any() else "all"
        )
        empty = np.array([""] * n, dtype=object)
        tracks = {
            "track_id": np.array(ids, dtype=object),
            "path": np.array([r[options.id_column] for r in rows], dtype=object),
            "label": y,
            "group": empty if groups is None else groups,
            "split": splits,
            "fold": folds,
        }
        segments = {"track": np.arange(n, dtype=np.int64), "start": np.zeros(n, dtype=np.int64), "length": np.zeros(n, dtype=np.int64)}
        feat_format.write_rows(f, segments, tracks)
        counts = {s or "no split": int(np.sum(splits == s)) for s in ("train", "validation", "test", "") if np.any(splits == s)}
        return {
            "folds": {int(k): int((folds == k).sum()) for k in np.unique(folds[folds >= 0])},
            "fold_groups": options.group_by if options.folds >= 2 else None,
            "n_rows": n,
            "n_features": len(cols),
            "split_method": method,
            "counts": counts,
            "shapes": {"table": [n, len(cols)]},
            "warnings": warnings,
        }

    return execute(
        stage=feat_format.KIND.stage,
        params=params,
        upstream={"table": (digest.hexdigest(), csv_path)},
        build=build,
        out=out,
        workdir=workdir,
        dataset=dataset,
        slug=f"table-{slugify(csv_path.stem)}-{options.split}",
        force=force,
        dry_run=dry_run,
        attrs=feat_format.attrs(
            labels=labels, feature_config={"table": str(csv_path.name), "columns": len(cols)}, segment_config={}, prov=prov
        ),
    )
