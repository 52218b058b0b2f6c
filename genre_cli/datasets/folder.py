"""``folder``: any local collection labelled by folder name or by a table.

Two ways to describe the collection (``source`` is the directory holding the audio):

* **folder-per-label** — ``SOURCE/<label>/.../<file>``: the label is the first folder level
  below ``SOURCE``; sub-folders are walked recursively; audio files are recognised by
  extension (:func:`genre_cli.audio.is_audio_path`). Other files, audio files directly in
  ``SOURCE`` (no label folder) and hidden files/folders (``.DS_Store``, ``._x.wav``, ``.git``)
  are ignored; the first two are counted in ``info["skipped_files"]``. Symlinked folders
  are followed, each directory once (:func:`genre_cli.walk.walk_files`; the walk ``genre
  predict`` does).
* **a table** — ``options.labels_csv``: a CSV with a ``path`` column (relative to ``SOURCE``;
  when ``source`` is None, the CSV's folder), a label column (``options.label_column``), an
  optional split column (``options.split_column``) and an optional group column
  (``options.group_by``: performer, artist, album, session ...).

Splits
------
``options.split``:

* ``"default"`` — the table's split column when there is one (the *official* split), else
  a seeded split stratified by label: by track, or by group when ``group_by`` is set
  (no group on two sides), with a warning that says so. A split column named with
  ``--split-column`` (not the default ``split``) must be in the table: a typo is an
  :class:`~genre_cli.errors.InputError` listing the table's columns, never a random split.
* ``"official"`` — the table's split column; an error when there is none.
* ``"random"`` — always the seeded stratified split (group-aware with ``group_by``), even
  when the table has a split column. ``--split-mode random --group-by drummer`` gives a
  performer-disjoint split.

When ``group_by`` is set and the official split is kept but puts a group on more than one
side, the official split is kept as is (it is what published numbers use) and a warning
naming the groups is added to ``info["warnings"]`` (suggesting ``--split-mode random``).

Split names in a table are mapped: train/training/tr → ``train``; validation/valid/val/dev/
development → ``validation``; test/testing/eval/evaluation → ``test``; an empty cell → ``""``
(unassigned, warned); any other value is an :class:`~genre_cli.errors.InputError`.

``options.folds = K`` (K ≥ 2) fills the ``fold`` column with a stratified K-fold assignment,
group-aware when groups are known, over the usable (``status == "ok"``) labelled tracks.

Every track is probed (duration, sample rate, channels) in parallel and hashed (md5);
files listed in a table but not on disk are kept with ``status="missing"``, files that do not
decode with ``status="corrupt"``, each with the reason. Computed
splits and folds only use ``ok`` tracks; the others get split ``""`` / fold -1 (a split taken
from a table is recorded as given, whatever the status).

The collection is indexed in place: ``TrackIndex.root`` is ``SOURCE`` and nothing is copied
to the data root.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from genre_cli.audio import AudioInfo, is_audio_path
from genre_cli.datasets import DATASETS, SPLIT_ALIASES, SPLITS, FetchOptions, TrackIndex, normalize_split
from genre_cli.errors import InputError, UsageError
from genre_cli.probe import md5_many, probe_many
from genre_cli.walk import walk_files

__all__ = [
    "folder",
    "stratified_split",
    "assign_folds",
    "groups_on_several_sides",
    "probe_rows",
    "finish_index",
]


def _group_keys(groups: np.ndarray | None, n: int) -> np.ndarray:
    """Groups for splitting: an empty group makes the track its own group."""
    if groups is None:
        return np.array([f"\x00{i}" for i in range(n)], dtype=object)
    return np.array([g if g else f"\x00{i}" for i, g in enumerate(groups)], dtype=object)


def stratified_split(
    labels: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Seeded train/validation/test assignment stratified by label.

    Without ``groups``: per label, tracks are shuffled and ``round(n·fraction)`` go to test
    and validation (at least one stays in train). With ``groups``: scikit-learn's
    ``StratifiedGroupKFold`` holds out whole groups — first the test side, then validation
    from the rest — so no group is on two sides (fractions are then approximate).

    Returns
    -------
    splits : np.ndarray of str, one per track
    warnings : list of str
    """
    labels = np.asarray(labels)
    n = len(labels)
    out = np.full(n, "train", dtype=object)
    notes: list[str] = []
    if n == 0:
        return out, notes
    if groups is None:
        rng = np.random.default_rng(seed)
        for lab in sorted(set(labels.tolist())):
            idx = np.flatnonzero(labels == lab)
            idx = idx[rng.permutation(len(idx))]
            n_test = int(round(len(idx) * test_fraction))
            n_val = int(round(len(idx) * val_fraction))
            while n_test + n_val > len(idx) - 1 and (n_test or n_val):
                if n_test >= n_val:
                    n_test -= 1
                else:
                    n_val -= 1
            out[idx[:n_test]] = "test"
            out[idx[n_test : n_test + n_val]] = "validation"
        return out, notes

    keys = _group_keys(np.asarray(groups, dtype=object), n)
    everything = np.arange(n)
    test_idx = _hold_out_groups(everything, labels, keys, test_fraction, seed, notes, "test")
    out[test_idx] = "test"
    rest = np.setdiff1d(everything, test_idx)
    rel_val = val_fraction / (1.0 - test_fraction) if test_fraction < 1 else 0.0
    val_idx = _hold_out_groups(rest, labels, keys, rel_val, seed + 1, notes, "validation")
    out[val_idx] = "validation"
    return out, notes


def _hold_out_groups(
    idx: np.ndarray, labels: np.ndarray, keys: np.ndarray, fraction: float, seed: int, notes: list[str], side: str
) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold

    if fraction <= 0 or len(idx) == 0:
        return np.zeros(0, dtype=np.int64)
    n_groups = len(set(keys[idx].tolist()))
    if n_groups < 2:
        notes.append(f"only {n_groups} group left: no {side} tracks could be held out group-wise")
        return np.zeros(0, dtype=np.int64)
    k = int(min(max(2, round(1.0 / fraction)), n_groups))
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has only m members" is expected
        folds = [test for _, test in sgkf.split(np.zeros(len(idx)), labels[idx], keys[idx])]
    target = fraction * len(idx)
    best = min(range(len(folds)), key=lambda i: (abs(len(folds[i]) - target), i))
    return idx[folds[best]]


def assign_folds(labels: np.ndarray, *, groups: np.ndarray | None, k: int, seed: int) -> np.ndarray:
    """Stratified K-fold assignment (0..k-1), group-aware (``StratifiedGroupKFold``).

    Raises
    ------
    UsageError
        If there are fewer groups (tracks, without groups) than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels)
    n = len(labels)
    keys = _group_keys(None if groups is None else np.asarray(groups, dtype=object), n)
    n_groups = len(set(keys.tolist()))
    if k > n_groups:
        what = "groups" if groups is not None and any(groups) else "tracks"
        raise UsageError(f"--folds {k} needs at least {k} {what}; there are {n_groups}")
    fold = np.full(n, -1, dtype=np.int64)
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (_, test) in enumerate(sgkf.split(np.zeros(n), labels, keys)):
            fold[test] = i
    return fold


def groups_on_several_sides(groups: np.ndarray, splits: np.ndarray) -> list[str]:
    """Non-empty groups that appear in more than one (non-empty) split, sorted."""
    sides: dict[str, set[str]] = {}
    for g, s in zip(groups, splits):
        if g and s:
            sides.setdefault(g, set()).add(s)
    return sorted(g for g, s in sides.items() if len(s) > 1)


# -- probing and assembling (shared) ---------------------------------------------------------


def probe_rows(rows: list[dict[str, Any]], root: Path, *, jobs: int, progress: bool) -> None:
    """Probe and md5 every row's ``path`` (relative to ``root``) in place.

    Fills duration/sr/channels/checksum; a file that is not there gets ``status="missing"``,
    one that does not decode ``status="corrupt"``, with the reason (``excluded`` rows that are
    also unusable take that status).
    """
    paths = [root / r["path"] for r in rows]
    infos = probe_many(paths, jobs=jobs, progress=progress)
    sums = md5_many(paths, jobs=jobs)
    for row, path, info, digest in zip(rows, paths, infos, sums):
        row["checksum"] = digest
        if isinstance(info, AudioInfo):
            row.update(duration=float(info.duration), sr=int(info.sr), channels=int(info.channels))
        else:
            missing = not os.path.lexists(path)  # a broken or looping link is there, and unusable
            row.update(status="missing" if missing else "corrupt", reason=_strip_root(str(info), root))


def _strip_root(text: str, root: Path) -> str:
    prefix = f"{root}{os.sep}"
    return text.replace(prefix, "")


def finish_index(rows: list[dict[str, Any]], *, root: Path, info: dict[str, Any]) -> TrackIndex:
    """Label names sorted alphabetically, ``label`` indexes into them, counts into ``info``."""
    names = sorted({r["label_name"] for r in rows if r.get("label_name")})
    lookup = {name: i for i, name in enumerate(names)}
    for r in rows:
        r["label"] = lookup.get(r.get("label_name") or "", -1)
    info = dict(info)
    info.setdefault("warnings", [])
    status = [r.get("status", "ok") for r in rows]
    info["n_tracks"] = len(rows)
    for s in ("ok", "corrupt", "excluded"):
        info[f"n_{s}"] = sum(1 for x in status if x == s)
    # listed but not on disk: rows of a table, plus what a dataset counted itself (GTZAN's split lists)
    info["n_missing"] = int(info.get("n_missing", 0)) + sum(1 for x in status if x == "missing")
    for s in SPLITS:
        info[f"n_{s}"] = sum(1 for r in rows if r.get("split") == s and r.get("status", "ok") == "ok")
    clean = [{k: v for k, v in r.items() if k != "label_name"} for r in rows]
    return TrackIndex.from_rows(clean, root=root, labels=names, info=info)


def apply_computed_split(rows: list[dict[str, Any]], options: FetchOptions, *, use_groups: bool) -> list[str]:
    """Seeded stratified split over ``ok`` labelled rows (group-aware if ``use_groups``); others get ""."""
    usable = [i for i, r in enumerate(rows) if r.get("status", "ok") == "ok" and r.get("label_name")]
    for r in rows:
        r["split"] = ""
    if not usable:
        return []
    labels = np.array([rows[i]["label_name"] for i in usable], dtype=object)
    groups = np.array([rows[i].get("group", "") for i in usable], dtype=object) if use_groups else None

    def draw(seed: int):
        return stratified_split(labels, groups=groups, val_fraction=options.val_fraction, test_fraction=options.test_fraction, seed=seed)

    splits, notes = draw(options.seed)
    for i, s in zip(usable, splits):
        rows[i]["split"] = str(s)
    if use_groups and np.array_equal(splits, draw(options.seed + 1)[0]):
        notes.append(SEED_NOTE.format(what="split", seed=options.seed, other=options.seed + 1))
    return notes


#: Said when a group-aware split or fold assignment does not change with the seed.
SEED_NOTE = (
    "with groups, the seed hardly changes this {what}: scikit-learn's StratifiedGroupKFold places whole groups greedily "
    "(balancing labels) and the seed only breaks ties; --seed {seed} and --seed {other} give the same {what}, so scores "
    "over several seeds measure the models, not the split"
)


def apply_folds(rows: list[dict[str, Any]], options: FetchOptions, *, use_groups: bool) -> list[str]:
    """``fold`` column for ``ok`` labelled rows when ``options.folds >= 2``; -1 elsewhere. Returns notes."""
    for r in rows:
        r["fold"] = -1
    if options.folds < 2:
        return []
    usable = [i for i, r in enumerate(rows) if r.get("status", "ok") == "ok" and r.get("label_name")]
    labels = np.array([rows[i]["label_name"] for i in usable], dtype=object)
    groups = np.array([rows[i].get("group", "") for i in usable], dtype=object) if use_groups else None
    folds = assign_folds(labels, groups=groups, k=options.folds, seed=options.seed)
    for i, f in zip(usable, folds):
        rows[i]["fold"] = int(f)
    if use_groups and np.array_equal(folds, assign_folds(labels, groups=groups, k=options.folds, seed=options.seed + 1)):
        return [SEED_NOTE.format(what="fold assignment", seed=options.seed, other=options.seed + 1)]
    return []


#: The split column a labels table is read for when --split-column is not given (absent: a random split).
DEFAULT_SPLIT_COLUMN = FetchOptions().split_column
#: The label column read when --label-column is not given.
DEFAULT_LABEL_COLUMN = FetchOptions().label_column


# -- the dataset ---------------------------------------------------------------------------------


def _random_split(source: str | None, options: FetchOptions) -> bool:
    """A folder's split is drawn at random unless a table's split column gives it."""
    if options.split == "random" or options.labels_csv is None:
        return True
    return options.split_column not in _table_columns(Path(options.labels_csv))


def _table_columns(table: Path) -> list[str]:
    """The header of a labels table ([] when it cannot be read: reading it for real says why)."""
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


@DATASETS.register(
    "folder",
    description="A local folder: one sub-folder per label, or a CSV table (path, label, [split], [group]).",
    source="DIR (required): the folder holding the audio",
    options=("labels_csv", "label_column", "split_column", "group_by", "folds", "split", "seed", "val_fraction", "test_fraction"),
    random_split=_random_split,
)
def folder(*, source: str | None, root: Path, options: FetchOptions) -> TrackIndex:
    """Index a local collection (see the module docstring). ``root`` is not used: indexed in place."""
    mode = options.split
    if source is None and options.labels_csv is not None:
        source = str(Path(options.labels_csv).parent)
    if source is None:
        raise UsageError(
            "the folder dataset needs SOURCE (--from): a directory with one sub-folder per label, or a labels table (--labels)"
        )
    base = Path(source).expanduser()
    if not base.is_dir():
        raise InputError(f"{base}: not a directory" if base.exists() else f"{base}: no such directory")
    base = base.resolve()

    info: dict[str, Any] = {"dataset": "folder", "source": str(base), "warnings": []}
    if options.labels_csv is not None:
        rows, has_split = _rows_from_table(base, Path(options.labels_csv), options, info)
    else:
        if options.group_by:
            raise UsageError(f"group_by (--group-by) {options.group_by!r} needs a table (labels_csv, --labels) with that column")
        for name, flag, default in (
            ("label_column", "--label-column", DEFAULT_LABEL_COLUMN),
            ("split_column", "--split-column", DEFAULT_SPLIT_COLUMN),
        ):
            if getattr(options, name) != default:
                raise UsageError(
                    f"{name} ({flag}) {getattr(options, name)!r} names a column of a labels table: give the table with --labels"
                )
        if mode == "official":
            raise UsageError(
                "split mode 'official' (--split-mode official) needs a table (labels_csv, --labels) with a split column; "
                "a plain folder has no official split"
            )
        rows = _rows_from_walk(base, info)
        has_split = False
        _check_one_label(rows, base, info)
    if not rows:
        raise InputError(f"{base}: no audio files found ({info.get('skipped_files', 0)} other files skipped); nothing was written")

    probe_rows(rows, base, jobs=options.jobs, progress=options.progress)
    use_groups = bool(options.group_by)
    notes: list[str] = info["warnings"]
    if has_split and mode in ("default", "official"):
        info["split_method"] = f"official (table column {options.split_column!r})"
        unassigned = sum(1 for r in rows if not r["split"])
        if unassigned:
            notes.append(f"{unassigned} tracks have an empty {options.split_column!r} cell and belong to no split")
        if use_groups:
            straddle = groups_on_several_sides(
                np.array([r["group"] for r in rows], dtype=object), np.array([r["split"] for r in rows], dtype=object)
            )
            if straddle:
                shown = ", ".join(straddle[:8]) + (" ..." if len(straddle) > 8 else "")
                notes.append(
                    f"the official split puts {len(straddle)} {options.group_by} value(s) on more than one side ({shown}); "
                    f"it is kept as published — use --split-mode random --group-by {options.group_by} for a {options.group_by}-disjoint "
                    "split"
                )
    else:
        if mode == "official":
            raise UsageError(f"split mode 'official' (--split-mode official): {options.labels_csv} has no {options.split_column!r} column")
        notes.extend(apply_computed_split(rows, options, use_groups=use_groups))
        info["split_method"] = (
            f"random, stratified by label, grouped by {options.group_by!r} (seed {options.seed})"
            if use_groups
            else f"random, stratified by track (seed {options.seed})"
        )
    notes.extend(apply_folds(rows, options, use_groups=use_groups))
    if not any(r["split"] == "train" for r in rows if r.get("status", "ok") == "ok" and r.get("label_name")):
        notes.append("no track is in the train split: the index can evaluate a model, but no model can be trained on it")
    if options.folds >= 2:
        info["folds"] = int(options.folds)
    if "random" in info["split_method"] or options.folds >= 2:
        info["seed"] = int(options.seed)
    return finish_index(rows, root=base, info=info)


def _rows_from_walk(base: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    undecodable: list[str] = []
    seen_ids: set[str] = set()
    for path in walk_files(base):  # hidden entries skipped, symlinked folders followed once
        rel = path.relative_to(base)
        if not is_audio_path(rel) or len(rel.parts) < 2:
            skipped.append(rel.as_posix())
            continue
        if not _utf8(rel.as_posix()):
            undecodable.append(rel.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
            continue
        rows.append(_row(rel.as_posix(), rel.parts[0], "", "", seen_ids))
    if undecodable:  # an index stores names as UTF-8 text: such a file could be neither stored nor found again
        shown = ", ".join(undecodable[:5]) + (" ..." if len(undecodable) > 5 else "")
        info["warnings"].append(
            f"{len(undecodable)} audio file(s) left out: the name is not valid UTF-8 ({shown}); rename them to index them"
        )
    info["skipped_files"] = len(skipped)
    info["skipped_examples"] = skipped[:10]
    info["labels_from"] = "folder names"
    return rows


def _check_one_label(rows: list[dict[str, Any]], base: Path, info: dict[str, Any]) -> None:
    """A walk that finds a single label: refuse when the labels are one level down (``SOURCE`` is a
    wrapper such as GTZAN's ``genres/``: no file directly in the one folder, two sub-folders or
    more), else warn that the index can evaluate, not train."""
    labels = {r["label_name"] for r in rows}
    if len(labels) != 1:
        return
    (label,) = labels
    parts = [Path(r["path"]).parts for r in rows]
    below = sorted({p[1] for p in parts if len(p) >= 3})
    if len(below) >= 2 and all(len(p) >= 3 for p in parts):  # no file directly in the one label folder
        shown = ", ".join(below[:6]) + (" ..." if len(below) > 6 else "")
        raise UsageError(
            f"{base}: every audio file is under one folder, {label!r}, which would make one label; the labels look one level "
            f"down ({len(below)} folders: {shown}): use --from {base / label} (or a labels table, --labels, for one label "
            "with sub-folders)"
        )
    info["warnings"].append(
        f"one label only ({label!r}): the index can evaluate a model on it, but a classifier cannot be trained on one label"
    )


def _utf8(text: str) -> bool:
    """True when ``text`` (a file name as the OS gave it) is valid UTF-8 (no surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _rows_from_table(base: Path, table: Path, options: FetchOptions, info: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    if not table.is_file():
        raise InputError(f"{table}: no such labels table")
    try:
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            records = [{(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in rec.items()} for rec in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{table}: cannot read the labels table ({exc})") from None
    named_split = options.split_column != DEFAULT_SPLIT_COLUMN  # a column the user named must be there
    need = (
        ["path", options.label_column] + ([options.group_by] if options.group_by else []) + ([options.split_column] if named_split else [])
    )
    missing = [c for c in need if c not in columns]
    if missing:
        raise InputError(f"{table}: missing column(s) {', '.join(missing)}; columns are: {', '.join(columns)}")
    has_split = options.split_column in columns
    if not has_split and options.split == "default":
        info["warnings"].append(
            f"{table.name} has no {options.split_column!r} column: the tracks are split at random (stratified by label"
            + (f", grouped by {options.group_by!r}" if options.group_by else "")
            + f", seed {options.seed}); name the table's split column with --split-column"
        )
    info.update(labels_from=f"{table} column {options.label_column!r}", labels_csv=str(table), skipped_files=0)
    if options.group_by:
        info["group_by"] = options.group_by

    rows: list[dict[str, Any]] = []
    seen_paths: set[str] = set()
    seen_ids: set[str] = set()
    bad_splits: set[str] = set()
    duplicates = 0
    for rec in records:
        raw = rec.get("path", "")
        if not raw:
            continue
        rel = _relative(raw, base, table)
        if rel in seen_paths:
            duplicates += 1
            continue
        seen_paths.add(rel)
        split = ""
        if has_split:
            mapped = normalize_split(rec.get(options.split_column, ""))
            if mapped is None:
                bad_splits.add(rec.get(options.split_column, ""))
                mapped = ""
            split = mapped
        label = rec.get(options.label_column, "")
        group = rec.get(options.group_by, "") if options.group_by else ""
        row = _row(rel, label, group, split, seen_ids)
        if not label:
            row.update(status="excluded", reason=f"empty {options.label_column!r} cell")
        rows.append(row)
    if bad_splits:
        accepted = ", ".join(sorted(SPLIT_ALIASES))
        raise InputError(
            f"{table}: unknown value(s) in column {options.split_column!r}: {', '.join(sorted(bad_splits))}; accepted: {accepted}"
        )
    if duplicates:
        info["warnings"].append(f"{duplicates} duplicate path(s) in {table.name} ignored (first row kept)")
    return rows, has_split


def _relative(raw: str, base: Path, table: Path) -> str:
    p = Path(raw.replace("\\", "/")).expanduser()
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(base)
        except ValueError:
            raise InputError(f"{table}: path {raw!r} is outside SOURCE {base}; paths must be relative to it") from None
    return PurePosixPath(*p.parts).as_posix()


def _row(rel: str, label: str, group: str, split: str, seen_ids: set[str]) -> dict[str, Any]:
    track_id = PurePosixPath(rel).with_suffix("").as_posix()
    if track_id in seen_ids:  # a.wav and a.mp3 side by side: keep the extension
        track_id = rel
    seen_ids.add(track_id)
    return {"track_id": track_id, "path": rel, "label_name": label, "group": group, "split": split, "status": "ok", "reason": ""}
