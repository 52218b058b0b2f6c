"""Track-level scores of a scikit-learn head on one feature of a features artifact.

Used by ``tools/genres_model.py`` (the shipped genre model's accuracy) and
``bench/transfer.py``. The head is the toolkit's own (:func:`genre_cli.models.build_model`),
fed as ``genre train`` feeds it: each column standardised with the mean and population std of
the training rows, windows classified one by one, a track's probabilities the mean over its
windows (:func:`genre_cli.inference.aggregate_tracks`, as ``genre evaluate`` at track level).

Two protocols:

* :func:`cross_validate` -- stratified K-fold over *tracks* (never windows of one track on both
  sides), fixed seed; every track is scored once, by the fold that held it out.
* :func:`split_score` -- fit on the tracks of one split (``train``), score those of another
  (``test``), as ``genre train`` + ``genre evaluate --split test`` do for sklearn models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.formats import features as feat_format
from genre_cli.inference import aggregate_tracks, sklearn_proba
from genre_cli.models import build_model


@dataclass
class Data:
    """One feature of a features artifact: rows, their labels and tracks."""

    x: np.ndarray  #: (n_windows, d) float32
    y: np.ndarray  #: (n_windows,) label index
    track: np.ndarray  #: (n_windows,) track id
    labels: list[str]
    track_ids: np.ndarray  #: (n_tracks,) sorted unique
    track_label: np.ndarray  #: (n_tracks,)
    track_split: np.ndarray  #: (n_tracks,)
    feature: str
    path: Path


def load(path: str | Path, feature: str) -> Data:
    f = feat_format.read(path)
    x = f.load(feature)
    x = x.reshape(len(x), -1)
    seg = f.segments
    keep = seg["label"] >= 0
    track = seg["track_id"][keep].astype(str)
    ids, first = np.unique(track, return_index=True)
    return Data(
        x[keep],
        seg["label"][keep],
        track,
        list(f.labels),
        ids,
        seg["label"][keep][first],
        seg["split"][keep][first].astype(str),
        feature,
        Path(path),
    )


def fit_predict(model: str, config: dict[str, Any], x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, n_classes: int) -> np.ndarray:
    """Window probabilities ``(len(x_te), n_classes)`` of ``model`` fitted on the training rows."""
    mean = x_tr.mean(axis=0, dtype=np.float64)
    std = x_tr.std(axis=0, dtype=np.float64)
    std = np.where(std < feat_format.STD_FLOOR, 1.0, std)
    clf = build_model(model, n_classes=n_classes, input_shapes={"vector": (x_tr.shape[1],)}, **config)
    clf.fit(((x_tr - mean) / std).astype(np.float32), y_tr)
    return sklearn_proba(clf, ((x_te - mean) / std).astype(np.float32), n_classes)


def _scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score

    return {"accuracy": float(np.mean(true == pred)), "balanced_accuracy": float(balanced_accuracy_score(true, pred))}


def _track_predictions(d: Data, proba: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys, tp = aggregate_tracks(proba, d.track[rows])
    return keys, tp.argmax(axis=1)


def cross_validate(d: Data, model: str = "logreg", config: dict[str, Any] | None = None, *, folds: int = 5, seed: int = 0) -> dict:
    """Stratified ``folds``-fold cross-validation over tracks.

    Returns
    -------
    dict
        ``accuracy`` and ``balanced_accuracy`` over all tracks (each scored by the fold that
        held it out), ``fold_accuracy`` (list), ``n_tracks``, ``predictions`` (track id ->
        predicted label), ``protocol`` (words).
    """
    from sklearn.model_selection import StratifiedKFold

    config = config or {}
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    index = {t: i for i, t in enumerate(d.track_ids)}
    row_track = np.array([index[t] for t in d.track])
    pred = np.full(len(d.track_ids), -1)
    fold_acc = []
    for tr_t, te_t in skf.split(np.zeros(len(d.track_ids)), d.track_label):
        tr, te = np.isin(row_track, tr_t), np.isin(row_track, te_t)
        proba = fit_predict(model, config, d.x[tr], d.y[tr], d.x[te], len(d.labels))
        keys, p = _track_predictions(d, proba, np.flatnonzero(te))
        idx = np.array([index[k] for k in keys])
        pred[idx] = p
        fold_acc.append(float(np.mean(p == d.track_label[idx])))
    out = _scores(d.track_label, pred)
    return out | {
        "fold_accuracy": fold_acc,
        "n_tracks": len(d.track_ids),
        "predictions": {str(t): d.labels[p] for t, p in zip(d.track_ids, pred)},
        "protocol": f"stratified {folds}-fold cross-validation over tracks (scikit-learn StratifiedKFold, shuffle, seed {seed})",
    }


def split_score(d: Data, model: str = "logreg", config: dict[str, Any] | None = None, *, train: str = "train", test: str = "test") -> dict:
    """Fit on the tracks of split ``train``, score the tracks of split ``test`` (track level)."""
    tr_tracks = d.track_ids[d.track_split == train]
    te_tracks = d.track_ids[d.track_split == test]
    tr, te = np.isin(d.track, tr_tracks), np.isin(d.track, te_tracks)
    if not tr.any() or not te.any():
        raise ValueError(f"{d.path}: no track in split {train if not tr.any() else test!r}")
    proba = fit_predict(model, config or {}, d.x[tr], d.y[tr], d.x[te], len(d.labels))
    keys, p = _track_predictions(d, proba, np.flatnonzero(te))
    true = d.track_label[np.searchsorted(d.track_ids, keys)]
    return _scores(true, p) | {"n_train_tracks": len(tr_tracks), "n_tracks": len(keys)}
