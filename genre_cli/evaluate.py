"""``evaluate`` stage: segment- and track-level metrics of one or more models on a split.

Writes an ``evaluate`` artifact (report JSON in attrs, confusion matrices as datasets) and a
``.json`` beside it. Refuses to score tracks a model was trained or validated on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import InputError, UsageError
from genre_cli.featurize import load_features
from genre_cli.inference import aggregate_tracks, load_classifier
from genre_cli.stage import StageResult, execute, slugify


def metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, labels: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro/per-class P/R/F1, OvR ROC AUC, confusion matrix.

    Parameters
    ----------
    y_true, y_pred : np.ndarray [shape=(n,)]  class indices
    proba : np.ndarray [shape=(n, n_classes)] or None
    """
    from sklearn import metrics as M

    k = np.arange(len(labels))
    p, r, f1, support = M.precision_recall_fscore_support(y_true, y_pred, labels=k, zero_division=0)
    present = np.unique(y_true)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(M.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(np.mean([np.mean(y_pred[y_true == c] == c) for c in present])) if len(present) else 0.0,
        "macro_precision": float(np.mean(p[present])) if len(present) else 0.0,
        "macro_recall": float(np.mean(r[present])) if len(present) else 0.0,
        "macro_f1": float(np.mean(f1[present])) if len(present) else 0.0,
        "per_class": {labels[c]: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f1[c]), "support": int(support[c])} for c in k},
        "confusion": M.confusion_matrix(y_true, y_pred, labels=k).tolist(),
        "auc": None,
    }
    if proba is not None and len(present) > 1:
        try:
            cols = present if len(present) < len(labels) else k
            pr = proba[:, cols] / np.maximum(proba[:, cols].sum(1, keepdims=True), 1e-12)
            if len(cols) == 2:
                out["auc"] = float(M.roc_auc_score(y_true == cols[1], pr[:, 1]))
            else:
                out["auc"] = float(M.roc_auc_score(y_true, pr, multi_class="ovr", labels=cols))
        except ValueError:
            out["auc"] = None
    return out


def leakage(model_path: Path, eval_tracks: set[str]) -> list[str]:
    """Track ids in ``eval_tracks`` that the model was trained or validated on."""
    import h5py

    seen: set[str] = set()
    with h5py.File(model_path, "r") as f:
        for split in ("train", "validation"):
            if f"splits/{split}" in f:
                seen |= set(f[f"splits/{split}"].asstr()[()])
    return sorted(seen & eval_tracks)


def evaluate_model(model_path: str | Path, feats, *, split: str, aggregate: str = "mean", allow_leakage: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Report for one model on the ``split`` segments of features ``feats``."""
    rows = np.flatnonzero(feats.segments["split"] == split) if split != "all" else np.arange(len(feats.segments["split"]))
    if len(rows) == 0:
        have = sorted({s for s in feats.segments["split"] if s})
        raise InputError(f"{feats.path}: no segments in split {split!r}; splits present: {', '.join(have) or 'none'}")
    tracks = feats.segments["track_id"][rows]
    leaked = leakage(Path(model_path), set(tracks))
    if leaked and not allow_leakage:
        raise InputError(
            f"{model_path} was trained/validated on {len(leaked)} of the {len(set(tracks))} evaluated tracks "
            f"(e.g. {', '.join(leaked[:3])}); its scores would be inflated",
            hint="evaluate on a split the model never saw, or pass --allow-leakage (it is printed in the report)",
        )
    clf = load_classifier(model_path, device=device)
    if clf.labels != feats.labels:
        raise InputError(f"{model_path} predicts labels {clf.labels}, but {feats.path} has {feats.labels}")
    x = {name: feats.load(name, rows) for name in set(clf.inputs.values())}
    proba = clf.predict_proba(x)
    y = feats.segments["label"][rows]
    seg = metrics(y, proba.argmax(1), proba, clf.labels)
    keys, tproba = aggregate_tracks(proba, tracks, method=aggregate)
    ty = np.array([y[tracks == k][0] for k in keys])
    trk = metrics(ty, tproba.argmax(1), tproba, clf.labels)
    return {
        "model": str(model_path), "model_name": clf.name, "dataset": feats.dataset, "features": str(feats.path),
        "split": split, "aggregate": aggregate, "labels": clf.labels, "n_tracks": int(len(keys)), "n_segments": int(len(rows)),
        "leakage": {"tracks": len(leaked), "allowed": bool(allow_leakage and leaked)},
        "segment": seg, "track": trk,
    }


def run(
    model_paths: list[str | Path],
    features_path: str | Path,
    *,
    split: str = "test",
    aggregate: str = "mean",
    allow_leakage: bool = False,
    device: str = "cpu",
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> StageResult:
    """Evaluate models on a split; ``summary["reports"]`` holds one report per model."""
    if not model_paths:
        raise UsageError("give at least one model file")
    if aggregate not in ("mean", "vote"):
        raise UsageError(f"unknown aggregation {aggregate!r}; use mean or vote")
    feats = load_features(features_path)
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    for i, m in enumerate(model_paths):
        meta = artifacts.read_meta(m)
        artifacts.check_meta(meta, "train")
        upstream[f"model{i}"] = (meta.fingerprint, m)
    params = {"split": split, "aggregate": aggregate, "allow_leakage": allow_leakage}
    names = "+".join(slugify(Path(m).stem) for m in model_paths)[:80]

    def build(f) -> dict[str, Any]:
        reports = [evaluate_model(m, feats, split=split, aggregate=aggregate, allow_leakage=allow_leakage, device=device) for m in model_paths]
        f.attrs["report"] = json.dumps(reports)
        for i, rep in enumerate(reports):
            g = f.create_group(f"model{i}")
            g.attrs["model"] = rep["model"]
            for level in ("segment", "track"):
                g.create_dataset(f"{level}_confusion", data=np.array(rep[level]["confusion"], dtype=np.int64))
        return {"reports": reports}

    result = execute(
        stage="evaluate", params=params, upstream=upstream, build=build, out=out, workdir=workdir,
        dataset=feats.dataset, slug=f"eval-{split}-{names}", force=force, dry_run=dry_run,
    )
    if result.status == "skipped":
        result.summary["reports"] = load_report(result.path)
    if result.status != "would run":
        result.path.with_suffix(".json").write_text(json.dumps(result.summary["reports"], indent=2))
    return result


def load_report(path: str | Path) -> list[dict[str, Any]]:
    """Reports stored in an evaluate artifact."""
    with artifacts.open_artifact(path, "evaluate") as (f, _):
        return json.loads(f.attrs["report"])
