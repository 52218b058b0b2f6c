"""``cv``: k-fold cross-validation of one or more models over the folds of the index.

The folds come from ``genre fetch --folds K`` (``fold`` column of the index, carried into the
features): stratified by label and, when the index knows groups (``--group-by drummer``),
group-disjoint (``StratifiedGroupKFold``), so each performer or artist is in one fold only.

For each fold ``k`` a small features artifact is written that *links* to the features (HDF5
external link, no copy) and relabels the splits: fold ``k`` is ``test``, every other fold
``train``, tracks without a fold are left out; there is no validation split (the default
training recipe keeps the last, averaged weights and needs none). Normalisation statistics are
recomputed on the training folds only. Each model is then trained on it with the train stage
(the same settings as ``genre train``) and scored on fold ``k`` at track level with the
evaluate stage's :func:`~genre_cli.evaluate.evaluate_model`, which refuses any test track the
model was trained on and, when the folds are group-disjoint, any test group it saw. The fold
artifacts and models are kept beside the report (``REPORT-folds/``) and skipped when up to
date, so an interrupted run resumes at the next unfinished fold.

Reported per model: per fold and mean and standard deviation over folds (sample standard
deviation, ``ddof=1``; none for a single fold: ``null``, with a note) of track-level balanced accuracy, accuracy and macro-F1 (track =
mean of its segments' probabilities), and the segment-level balanced accuracy. Each number
names its data (features, dataset), split method (folds, group column, group-aware or not)
and level. Cross-validated results in the GTZAN literature are 10-fold (e.g. Tzanetakis &
Cook 2002), with the caveat that GTZAN folds are not artist-disjoint here (no artist column).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import InputError, UsageError
from genre_cli.formats import cv as cv_format
from genre_cli.formats import features as feat_format
from genre_cli.formats.provenance import Provenance
from genre_cli.stage import StageResult, default_output, execute, planned_fingerprint, slugify
from genre_cli.training.config import NO_VALIDATION, TrainConfig

__all__ = ["Folds", "check_folds", "fold_features", "run", "summarize"]

#: The scores averaged over folds (track level), as printed.
SCORES = ("balanced_accuracy", "accuracy", "macro_f1")
#: Rows read at once when computing the training folds' normalisation statistics.
NORM_BLOCK = 512


# ----------------------------------------------------------------------------- folds


class Folds:
    """The fold assignment of a features file, checked (:func:`check_folds`).

    Attributes
    ----------
    ids : list of int
        The folds present (``0..K-1``).
    track_fold, track_label : np.ndarray [shape=(n_tracks,)]
        Per track of ``/tracks``: its fold (-1: none, left out) and label index (-1: none).
    track_id, track_group : np.ndarray of str [shape=(n_tracks,)]
    group_column : str or None
        The index's group column (``--group-by``), when known.
    groups_known : bool
        Some folded track has a non-empty group.
    group_disjoint : bool
        Groups are known and none is in two folds.
    shared_groups : list of str
        Groups found in more than one fold.
    """

    def __init__(self, feats: feat_format.Features):
        t = feats.tracks
        self.track_id = np.asarray(t["track_id"]).astype(str)
        self.track_fold = np.asarray(t["fold"], dtype=np.int64)
        self.track_label = np.asarray(t["label"], dtype=np.int64)
        self.track_group = np.asarray(t["group"]).astype(str) if "group" in t else np.full(len(self.track_id), "", dtype=object)
        self.ids = sorted(int(k) for k in np.unique(self.track_fold) if k >= 0)
        self.group_column = feats.provenance.group_by
        folded = self.track_fold >= 0
        groups = self.track_group[folded]
        self.groups_known = bool(np.any(groups != ""))
        fold_of: dict[str, set[int]] = {}
        for g, k in zip(groups, self.track_fold[folded]):
            if g:
                fold_of.setdefault(str(g), set()).add(int(k))
        self.shared_groups = sorted(g for g, ks in fold_of.items() if len(ks) > 1)
        self.group_disjoint = self.groups_known and not self.shared_groups

    @property
    def method(self) -> str:
        """How the folds were made, in words: stored in the report and printed as the table's title
        (the same words as ``genre fetch``'s ``folds:`` line)."""
        k, col = len(self.ids), self.group_column or "group"
        if self.group_disjoint:
            return f"{k}-fold cross-validation, stratified by label, no {col} in two folds"
        if self.groups_known:
            return f"{k}-fold cross-validation, stratified by label, NOT {col}-disjoint ({len(self.shared_groups)} {col}s in several folds)"
        return f"{k}-fold cross-validation, stratified by label, by track (no groups known)"


def check_folds(feats: feat_format.Features, only: Sequence[int] | None = None) -> tuple[Folds, list[str]]:
    """Check that ``feats`` can be cross-validated; returns the folds and warnings.

    Raises
    ------
    InputError
        No folds in the index (fetch with ``--folds K``), a single fold, a folded track without
        a label, a fold with no segments, or a fold asked for in ``only`` that does not exist.
    """
    if "fold" not in feats.tracks or "fold" not in feats.segments:
        raise InputError(f"{feats.path}: no fold column", hint="index the dataset with `genre fetch ... --folds K`")
    folds = Folds(feats)
    if not folds.ids:
        raise InputError(
            f"{feats.path}: its index has no cross-validation folds",
            hint="fetch the dataset with `genre fetch ... --folds K` (add --group-by COL to keep performers/artists apart), "
            "then segment and featurize it again; for a feature table, import it with `genre featurize --table CSV --folds K`",
        )
    if len(folds.ids) < 2:
        raise InputError(f"{feats.path}: only one fold ({folds.ids[0]}); cross-validation needs at least two")
    if only:
        missing = sorted(set(only) - set(folds.ids))
        if missing:
            have = ", ".join(map(str, folds.ids))
            raise UsageError(f"fold(s) {', '.join(map(str, missing))} not in {feats.path.name}; its folds: {have}")
    nolabel = (folds.track_fold >= 0) & (folds.track_label < 0)
    if np.any(nolabel):
        raise InputError(
            f"{feats.path}: {int(nolabel.sum())} tracks in folds have no label (e.g. {', '.join(folds.track_id[nolabel][:3])})",
            hint="label every track, or leave unlabelled tracks out of the folds",
        )
    seg_fold = np.asarray(feats.segments["fold"], dtype=np.int64)
    warnings: list[str] = []
    for k in sorted(set(only)) if only else folds.ids:
        if not np.any(seg_fold == k):
            raise InputError(f"{feats.path}: fold {k} has no segments (its tracks were all skipped by `genre segment`)")
        present = set(folds.track_label[folds.track_fold == k].tolist())
        absent = [lab for i, lab in enumerate(feats.labels) if i not in present and np.any(folds.track_label[folds.track_fold >= 0] == i)]
        if absent:
            warnings.append(f"fold {k} has no track of {', '.join(absent)}: its balanced accuracy and macro-F1 cover the other labels")
    if folds.groups_known and folds.shared_groups:
        name = folds.group_column or "group"
        warnings.append(
            f"the folds are not {name}-disjoint although the index knows {name}s: {len(folds.shared_groups)} are in several folds "
            f"(e.g. {', '.join(folds.shared_groups[:3])}); read the scores as seen-{name} scores, or fetch again with "
            f"`--group-by {name} --folds {len(folds.ids)}`"
        )
    elif not folds.groups_known:
        warnings.append(
            "no groups (performer, artist) are known: folds are by track, and one performer's or artist's tracks may be in "
            "training and test (`genre fetch ... --group-by COL --folds K`, or for a feature table `genre featurize --table CSV "
            "--group-by COL --folds K`, keeps them apart)"
        )
    left_out = int(np.sum(folds.track_fold < 0))
    if left_out:
        warnings.append(f"{left_out} tracks have no fold (unlabelled or unreadable) and are left out")
    return folds, warnings


# ----------------------------------------------------------------------------- one fold


def _fold_params(feats: feat_format.Features, k: int) -> tuple[dict[str, Any], dict[str, tuple[str, Path]]]:
    return {"cv_test_fold": int(k)}, {"features": (feats.meta.fingerprint, Path(feats.path).resolve())}


def fold_features(feats: feat_format.Features, folds: Folds, k: int, out: Path, *, force: bool = False) -> StageResult:
    """A features artifact for fold ``k`` at ``out``: fold ``k`` is ``test``, the other folds
    ``train`` (tracks without a fold: no split), normalisation from the training folds only,
    features linked (HDF5 external link to ``feats.path``, no copy). Skipped when up to date.
    """
    params, upstream = _fold_params(feats, k)
    src = Path(feats.path).resolve()

    def relabel(fold: np.ndarray) -> np.ndarray:
        fold = np.asarray(fold, dtype=np.int64)
        return np.where(fold == k, "test", np.where(fold >= 0, "train", "")).astype(object)

    def build(f) -> dict[str, Any]:
        seg = dict(feats.segments)
        seg["split"] = relabel(seg["fold"])
        trk = dict(feats.tracks)
        trk["split"] = relabel(trk["fold"])
        rows = np.flatnonzero(seg["split"] == "train")
        f["features"] = h5py.ExternalLink(str(src), "/features")
        feat_format.write_norm(f, {name: _train_norm(feats, name, rows) for name in feats.names}, split="train")
        artifacts.write_table(f, "segments", seg)
        artifacts.write_table(f, "tracks", trk)
        return {"n_train": int(len(rows)), "n_test": int(np.sum(seg["split"] == "test"))}

    prov = feats.provenance
    fold_prov = Provenance(
        dataset=prov.dataset,
        split_method=f"{folds.method}: fold {k} as test, the other folds as train (index split: {prov.split_method})",
        group_by=prov.group_by,
        group_aware=folds.group_disjoint,
        folds=len(folds.ids),
        index=prov.index,
    )
    attrs = feat_format.attrs(labels=feats.labels, feature_config=feats.feature_config, segment_config=feats.segment_config, prov=fold_prov)
    return execute(
        stage=feat_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out,
        workdir=None,
        dataset=feats.dataset,
        slug="",
        force=force,
        attrs=attrs,
    )


def _train_norm(feats: feat_format.Features, name: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-last-axis mean and std of feature ``name`` over ``rows`` (and frames), in blocks."""
    mom: tuple = (0, 0.0, 0.0)
    for i in range(0, len(rows), NORM_BLOCK):
        mom = feat_format.merge(mom, feat_format.moments(feats.load(name, rows[i : i + NORM_BLOCK])))
    return feat_format.norm_stats(mom, feats.shapes[name][-1])


# ----------------------------------------------------------------------------- summary


#: The note of a summary over one fold, whose spread is undefined.
ONE_FOLD = "one fold: no standard deviation (it needs two or more folds)"


def summarize(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (``ddof=1``) over folds of the track-level
    :data:`SCORES` and the segment-level balanced accuracy.

    The spread of one fold is undefined: its ``std`` is ``None`` (``null`` in the JSON report),
    and ``note`` says why (:data:`ONE_FOLD`).

    Returns
    -------
    dict
        ``{"track": {score: {"mean", "std", "values"}}, "segment": {"balanced_accuracy": ...}, "n_folds"}``,
        plus ``note`` for one fold.
    """

    def agg(values: list[float]) -> dict[str, Any]:
        return {
            "mean": float(statistics.fmean(values)),
            "std": float(statistics.stdev(values)) if len(values) > 1 else None,
            "values": [float(v) for v in values],
        }

    out = {
        "n_folds": len(per_fold),
        "track": {s: agg([r["track"][s] for r in per_fold]) for s in SCORES},
        "segment": {"balanced_accuracy": agg([r["segment"]["balanced_accuracy"] for r in per_fold])},
    }
    return out | ({"note": ONE_FOLD} if len(per_fold) == 1 else {})


# ----------------------------------------------------------------------------- the command


def _labels(configs: Sequence[TrainConfig]) -> list[str]:
    """One name per model: its model name, numbered where the same model comes twice."""
    names = [c.model for c in configs]
    return [n if names.count(n) == 1 else f"{n}-{names[:i].count(n) + 1}" for i, n in enumerate(names)]


def run(
    features_path: str | Path,
    *,
    models: Sequence[TrainConfig],
    labels: Sequence[str] | None = None,
    folds: Sequence[int] | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = False,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> StageResult:
    """Cross-validate ``models`` over the folds of a features artifact; write the cv report.

    Parameters
    ----------
    features_path : path
        Features artifact whose index was fetched with ``--folds K``.
    models : sequence of TrainConfig
        One training configuration per model (as ``genre train`` takes); at least one.
    labels : sequence of str or None
        A distinct name per model in the report (default: the model names, numbered where one
        comes twice); also names its fold models' files.
    folds : sequence of int or None
        Only these folds as test folds (default: all); the training side is always every
        other fold.
    out : path or None
        The report artifact (default: ``<workdir>/<dataset>/cv-<models>-<fingerprint>.h5``).
        Fold features and models go to ``<out stem>-folds/`` beside it.
    force : bool
        Redo the report and every fold's features and models.
    show_progress : bool
        Training progress bars.
    on_fold : callable(record) or None
        Called after each (model, fold) with its record (``model``, ``fold``, ``track``,
        ``segment``, ``n_train_tracks``, ``n_test_tracks``, ``status``, ``seconds``, ...).
    on_notice : callable(text) or None
        Called with each warning known before training (folds not group-aware, a label absent
        from a fold, ...); without it, they join the result's warnings.

    Returns
    -------
    StageResult
        ``summary["report"]``: ``dataset``, ``features``, ``index``, ``labels``, ``level``
        (``"track"``), ``aggregate``, ``folds`` (test folds run), ``n_folds`` (in the index),
        ``split_method``, ``group_column``, ``group_disjoint``, ``n_tracks`` (in folds),
        ``n_left_out``, ``fold_label_counts`` (fold -> label -> tracks), ``models`` (per model:
        ``label``, ``model``, ``train`` settings, ``folds`` (records as given to ``on_fold``),
        ``summary`` (:func:`summarize`)).

    Raises
    ------
    InputError
        The index has no folds, a folded track lacks a label, a fold has no segments
        (:func:`check_folds`); leakage found by the evaluation (a bug: never expected).
    UsageError
        No model, an unknown model name or device, a fold that does not exist.
    """
    from genre_cli.evaluate import evaluate_model
    from genre_cli.inference import check_device
    from genre_cli.models import model_info
    from genre_cli.train import check as train_check
    from genre_cli.train import run as train_run

    if not models:
        raise UsageError("give at least one model to cross-validate (--model NAME)")
    selecting = []
    for cfg in models:
        info = model_info(cfg.model)  # unknown name -> UsageError listing the valid ones, before any work
        check_device(cfg.device)
        asked = [f"--select {cfg.select}"] if cfg.select not in (None, "last") else []
        asked += ["--patience"] if cfg.patience else []
        asked += ["--paper (its epoch selection)"] if cfg.paper and not asked else []
        if info["kind"] == "torch" and asked:
            selecting.append(f"{cfg.model}: {', '.join(asked)}")
    feats = feat_format.read(features_path)
    for cfg in models:  # every model's options (--set, --input, settings) before any model trains
        train_check(feats, cfg)
    fold_set, warnings = check_folds(feats, folds)
    if selecting:
        warnings.append(
            "cross-validation has no validation split, so nothing selects an epoch or stops early: the last weights are kept "
            f"({'; '.join(selecting)})"
        )
    test_folds = sorted(set(folds)) if folds else fold_set.ids
    if labels is None:
        labels = _labels(models)
    elif len(labels) != len(models) or len(set(labels)) != len(labels):
        raise UsageError(f"labels must be one distinct name per model, got {list(labels)} for {len(models)} models")
    labels = [str(lab) for lab in labels]
    params = {
        "models": [{"label": lab, "train": cfg.to_params()} for lab, cfg in zip(labels, models)],
        "folds": test_folds,
        "cv_version": cv_format.CV_VERSION,
    }
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    fp = planned_fingerprint(cv_format.KIND.stage, params, upstream)
    out_path = Path(out) if out else default_output(workdir, feats.dataset, f"cv-{'-'.join(labels)}", fp)
    fold_dir = out_path.with_name(out_path.stem + "-folds")
    if on_notice is not None and not dry_run and (force or not artifacts.is_up_to_date(out_path, fp)):
        for w in warnings:
            on_notice(w)
        warnings = []

    in_folds = fold_set.track_fold >= 0
    counts = {
        str(k): {lab: int(np.sum((fold_set.track_fold == k) & (fold_set.track_label == i))) for i, lab in enumerate(feats.labels)}
        for k in fold_set.ids
    }
    report: dict[str, Any] = {
        "dataset": feats.dataset,
        "features": str(feats.path),
        "index": feats.provenance.index,
        "labels": feats.labels,
        "level": "track",
        "aggregate": "mean",
        "folds": test_folds,
        "n_folds": len(fold_set.ids),
        "split_method": fold_set.method,
        "index_split_method": feats.provenance.split_method,
        "group_column": fold_set.group_column,
        "groups_known": fold_set.groups_known,
        "group_disjoint": fold_set.group_disjoint,
        "n_tracks": int(in_folds.sum()),
        "n_left_out": int((~in_folds).sum()),
        "fold_label_counts": counts,
        "std": "sample standard deviation over folds (ddof=1); null for one fold",
        "models": [],
    }

    def build(f) -> dict[str, Any]:
        fold_feats = {}
        for k in test_folds:
            fold_feats[k] = feat_format.read(fold_features(feats, fold_set, k, fold_dir / f"features-fold{k}.h5", force=force).path)
        arrays: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        said: dict[tuple[str, str], list[int]] = {}  # (model, warning) -> folds: one line per warning, not per fold
        for i, (lab, cfg) in enumerate(zip(labels, models)):
            records = []
            for k in test_folds:
                ff = fold_feats[k]
                t0 = time.perf_counter()
                tr = train_run(ff.path, config=cfg, out=fold_dir / f"{slugify(lab)}-fold{k}.h5", force=force, show_progress=show_progress)
                for w in tr.warnings:
                    if f"{NO_VALIDATION}:" not in w:  # said once, before training
                        said.setdefault((lab, w), []).append(int(k))
                rep = evaluate_model(tr.path, ff, split="test", device="cpu" if cfg.device == "auto" else cfg.device)
                train_tracks = ff.tracks["split"] == "train"
                rec = {
                    "model": lab,
                    "fold": int(k),
                    "model_path": str(tr.path),
                    "status": tr.status,
                    "seconds": round(time.perf_counter() - t0, 2),
                    "n_train_tracks": int(train_tracks.sum()),
                    "n_test_tracks": rep["n_tracks"],
                    "n_train_segments": int(np.sum(ff.segments["split"] == "train")),
                    "n_test_segments": rep["n_segments"],
                    "labels_absent": rep["labels_absent"],
                    "track": {s: rep["track"][s] for s in SCORES},
                    "segment": {s: rep["segment"][s] for s in SCORES},
                    "leakage": {key: rep["leakage"][key] for key in ("tracks", "group_tracks", "group_disjoint", "note")},
                }
                arrays[(i, k)] = {key: rep["_arrays"][key] for key in ("track_id", "track_label", "track_proba")}
                records.append(rec)
                if on_fold is not None:
                    on_fold(rec)
            report["models"].append(
                {"label": lab, "model": cfg.model, "train": cfg.to_params(), "folds": records, "summary": summarize(records)}
            )
        cv_format.write(f, report, arrays, prov=feats.provenance)
        notes = [f"{lab} fold{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))}: {w}" for (lab, w), ks in said.items()]
        return {"report": report, "warnings": notes}

    result = execute(
        stage=cv_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out_path,
        workdir=workdir,
        dataset=feats.dataset,
        slug="",
        force=force,
        dry_run=dry_run,
    )
    result.warnings = warnings + result.warnings
    if result.status == "skipped":
        result.summary["report"] = cv_format.read(result.path)
    if result.status != "would run":
        cv_format.write_json(result.path, result.summary["report"])
    result.summary["fold_dir"] = str(fold_dir)
    return result
