"""``fetch`` stage: build a dataset's track index (labels, groups, splits) as an HDF5 artifact.

The layout of the index is :mod:`genre_cli.formats.index`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.datasets import RUN_OPTIONS, FetchOptions, TrackIndex, check_options, get_dataset, random_split, seed_used
from genre_cli.errors import InputError
from genre_cli.formats import index as index_format
from genre_cli.stage import StageResult, execute
from genre_cli.walk import walk_files

DEFAULT_DATA_ROOT = "~/.cache/genre/data"


def resolve_data_root(root: str | Path | None) -> Path:
    """``root`` if given, else ``$GENRE_DATA``, else ``~/.cache/genre/data``."""
    return Path(os.path.expanduser(str(root or os.environ.get("GENRE_DATA") or DEFAULT_DATA_ROOT)))


def source_fingerprint(source: str | None, dataset: str) -> str:
    """Cheap identity of a dataset's source: a listing hash (path, size, mtime) for local
    folders/files, the URL for URLs, the package data listing for ``demo``."""
    if dataset == "demo":
        from genre_cli.datasets.demo import demo_root

        return _listing_hash(demo_root())
    if source and "://" not in source and Path(source).exists():
        return _listing_hash(Path(source))
    return hashlib.sha256(str(source).encode()).hexdigest()


def _listing_hash(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        st = path.stat()
        h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()
    for p in walk_files(path, hidden=True):  # the files fetch folder sees (through symlinked folders too)
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))  # any file name
    return h.hexdigest()


def labels_fingerprint(table: str | Path) -> str:
    """sha256 of the labels table's bytes (a table that cannot be read gets a fingerprint of its
    path only: fetch then fails on it with the reason)."""
    try:
        return hashlib.sha256(Path(table).read_bytes()).hexdigest()
    except OSError:
        return hashlib.sha256(f"unreadable\0{table}".encode("utf-8", "surrogateescape")).hexdigest()


def _upstream(dataset: str, source: str | None, options: FetchOptions) -> dict[str, tuple[str, str]]:
    """What an index is made from: the source (listing, URL or package data) and, with
    ``--labels``, the table's content, so editing a label or deleting a row reruns fetch."""
    if source is None and options.labels_csv is not None and dataset == "folder":
        source = str(Path(options.labels_csv).parent)  # the folder dataset's own default
    upstream = {"source": (source_fingerprint(source, dataset), source or dataset)}
    if options.labels_csv is not None:
        upstream["labels"] = (labels_fingerprint(options.labels_csv), str(options.labels_csv))
    return upstream


#: What the parameters of an index hold in place of an option that cannot change it.
NOT_USED = {
    "seed": "not used: the split is fixed and there are no folds",
    "val_fraction": "not used: the split is fixed",
    "test_fraction": "not used: the split is fixed",
}


def _params(dataset: str, source: str | None, options: FetchOptions) -> dict[str, Any]:
    """The fingerprinted parameters: the options that change the index (the seed and the split
    fractions only when the split is drawn at random or folds are assigned; otherwise they
    are recorded as not used, so ``genre run --seed N`` does not re-index a fixed split)."""
    opts = dataclasses.asdict(options)
    for volatile in RUN_OPTIONS:
        opts.pop(volatile)
    if not random_split(dataset, source, options):
        opts.update(val_fraction=NOT_USED["val_fraction"], test_fraction=NOT_USED["test_fraction"])
    if not seed_used(dataset, source, options):
        opts["seed"] = NOT_USED["seed"]
    if opts["labels_csv"] is not None:
        opts["labels_csv"] = str(Path(opts["labels_csv"]).resolve())
    src = source
    if source and "://" not in source:
        src = str(Path(source).expanduser().resolve())
    return {"dataset": dataset, "source": src, "options": opts}


def run(
    dataset: str,
    *,
    source: str | None = None,
    root: str | Path | None = None,
    options: FetchOptions | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> StageResult:
    """Index ``dataset`` and write the index artifact.

    Parameters
    ----------
    dataset : str
        Registered dataset name (``demo``, ``folder``, ``gtzan``, ...).
    source : str or None
        URL, archive or folder the dataset comes from (dataset-specific default when None).
    root : path or None
        Data root for downloads and extraction (see :func:`resolve_data_root`).
    options : FetchOptions
        Labels table, split policy, grouping, folds, seed, ...

    Returns
    -------
    StageResult
        ``summary`` holds ``counts`` (label → split → n), ``n_tracks``, ``n_bad``, ``folds``
        (fold → n tracks; empty without ``options.folds``), ``fold_groups`` (the group column
        the folds keep apart, or None) and ``skipped_files``.
    """
    options = options or FetchOptions()
    fn = get_dataset(dataset)  # unknown name → UsageError with the valid names
    check_options(dataset, options)  # an option the dataset does not take is refused, never ignored
    params = _params(dataset, source, options)
    upstream = _upstream(dataset, source, options)

    name = display_name(dataset, source, options)

    def build(f) -> dict[str, Any]:
        index: TrackIndex = fn(source=source, root=resolve_data_root(root), options=options)
        summary = summarize(index.tracks, index.labels)
        if summary["n_tracks"] == 0:  # an index of unusable files would only fail later
            raise InputError(_nothing_usable(index, source or dataset, summary))
        index_format.write(f, index, dataset=name, params=params)
        fold = np.asarray(index.tracks["fold"])
        folds = {int(k): int((fold == k).sum()) for k in np.unique(fold[fold >= 0])}
        return summary | {
            "folds": folds,
            "fold_groups": (options.group_by or index.info.get("group_by")) if folds else None,
            "skipped_files": int(index.info.get("skipped_files", 0)),
            "warnings": list(index.info.get("warnings", [])) + missing_class_warnings(summary["counts"]),
        }

    return execute(
        stage=index_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out,
        workdir=workdir,
        dataset=name,
        slug="index",
        force=force,
        dry_run=dry_run,
    )


def unused_seed_note(dataset: str, source: str | None, options: FetchOptions) -> str | None:
    """A line saying that ``options.seed`` (when not the default) does not change this index."""
    if options.seed == FetchOptions().seed or seed_used(dataset, source, options):
        return None
    return (
        f"--seed {options.seed} does not change this index: the {dataset} split is fixed and there are no folds "
        "(the seed draws --split-mode random splits and --folds)"
    )


def _nothing_usable(index: TrackIndex, source: str, summary: dict[str, Any]) -> str:
    n = len(index)
    bad = ", ".join(f"{k} {v}" for k, v in sorted(summary["n_bad"].items()))
    reasons = [str(r) for r in index.tracks["reason"] if r]
    return (
        f"{source}: none of the {n} audio files can be used ({bad})" + (f", e.g. {reasons[0]}" if reasons else "") + "; nothing was written"
    )


def display_name(dataset: str, source: str | None, options: FetchOptions) -> str:
    """The name reports and work folders use: the registry name, except for ``folder``,
    where the collection's own folder name says more (``groove-styles``, not ``folder``)."""
    if dataset != "folder":
        return dataset
    base = source or (str(Path(options.labels_csv).parent) if options.labels_csv else "")
    name = Path(str(base).rstrip("/")).name if base else ""
    return name or dataset


def missing_class_warnings(counts: dict[str, dict[str, int]]) -> list[str]:
    """One warning per split (of those used) that lacks some labels: its macro metrics skip them."""
    used = {s for c in counts.values() for s in c if s in ("train", "validation", "test")}
    out = []
    for split in ("train", "validation", "test"):
        if split not in used:
            continue
        missing = sorted(label for label, c in counts.items() if not c.get(split))
        if missing:
            out.append(
                f"the {split} split has no track of {', '.join(missing)}: "
                + ("the model cannot learn them" if split == "train" else f"{split} metrics cover the other labels only")
            )
    return out


def summarize(tracks: dict[str, np.ndarray], labels: list[str]) -> dict[str, Any]:
    """Tracks per label x split (ok tracks only), plus counts of non-ok tracks."""
    ok = tracks["status"] == "ok"
    counts: dict[str, dict[str, int]] = {}
    for lab, split in zip(tracks["label"][ok], tracks["split"][ok]):
        name = labels[lab] if 0 <= lab < len(labels) else "?"
        counts.setdefault(name, {}).setdefault(split or "-", 0)
        counts[name][split or "-"] += 1
    bad = {}
    for status in sorted(set(tracks["status"]) - {"ok"}):
        bad[status] = int(np.sum(tracks["status"] == status))
    return {"counts": counts, "n_tracks": int(ok.sum()), "n_bad": bad}
