"""``evaluate`` stage: segment- and track-level metrics of one or more models on a split.

Writes an ``evaluate`` artifact and a ``.json`` beside it. Every report names its data:
dataset, features file, index, split (and how the split was made), level, numbers of
tracks and segments.

Levels
------
``segment``
    One prediction per segment (window) of the features file.
``track``
    Segment probabilities aggregated per track by :func:`genre_cli.inference.aggregate_tracks`:
    ``mean`` (default; Yang & Zhang 2019 *sums* them, which has the same argmax, so the same
    predictions) or ``vote`` (majority of segment argmaxes, ties broken by mean probability).

Metrics (per level)
-------------------
accuracy, balanced accuracy (mean recall over the classes present in the split), macro
precision/recall/F1 over the classes present in the split (``sklearn``
``f1_score(y, p, labels=present, average="macro")``), per-class precision/recall/F1/support
and one-vs-rest ROC AUC, macro one-vs-rest ROC AUC (probabilities renormalised over the
classes present), confusion matrix (rows: true, columns: predicted, all labels).

Labels
------
Labels are matched by name between the model and the features file (:func:`map_labels`), so
an external test set may list them in another order and hold only some of the model's
labels: macro scores then cover the labels present, and the report's ``labels_absent`` names
the others. A label the model does not know cannot be scored and is refused.

Leakage policy
--------------
* **Track overlap is always refused**: an evaluated track that is among the model's
  training or validation tracks (``/splits/train``, ``/splits/validation`` of the model
  file) makes the scores meaningless. ``--allow-leakage`` overrides; the report then says
  so (``leakage.allowed``), and the printed table flags the model. The same clip may come
  under another id scheme (the ``gtzan`` dataset's ``blues.00000`` is ``folder``'s
  ``blues/blues.00000``), so a track also counts as seen when its label and name
  (:func:`track_name`) equal a seen track's (``leakage.renamed``); label *and* name, because
  two collections may both hold a ``01.wav``. Where the model file does not record a seen
  track's label (files written before ``/splits/<split>_labels``) and its id does not name
  one, a name match alone is reported as a warning (``leakage.name_tracks``), not refused.
* **Group overlap** (an evaluated track whose group — performer, artist — is among the
  model's ``/splits/train_groups`` or ``/splits/validation_groups``):

  - *refused* when the evaluated index was built with a group-aware computed split
    (``genre fetch --group-by COL`` with a random/default computed split): there, a shared
    group can only mean that the model comes from another split, so scores are inflated;
    The embedded demo's own split is performer-disjoint and recorded as group-aware, so it
    is refused there too;
  - *reported* otherwise: an official split chosen by the dataset's authors (e.g. the
    Groove MIDI split of groove-styles, which puts the same drummers on several sides by
    design) or a split made without groups. Refusing would make the published
    split unusable, so the report says how many tracks share a group with training
    (``leakage.group_tracks``, printed as a warning: "this split is not
    performer-disjoint") and the scores are to be read as *seen-performer* scores.

  How the split was made comes from the features file's provenance (recorded by ``fetch``
  and carried forward by every stage; :mod:`genre_cli.formats.provenance`); when it is not
  known the split is treated as not group-aware (reported, not refused).

Feature parameters
------------------
Features computed with other parameters than the model's training features (sample rate,
window length, ``n_fft``, hop, mel bands, fmin/fmax, dB or power, ``top_db``, MFCC settings,
embedding network: whatever changes the values of the model's inputs,
:func:`feature_differences`) give wrong scores even when the shapes agree, and are refused
(:func:`check_features`); ``genre predict`` computes features from the model's own recorded
parameters, so it cannot differ.

The report artifact's layout is :mod:`genre_cli.formats.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.audio import AUDIO_EXTENSIONS
from genre_cli.datasets import check_score_split
from genre_cli.errors import GenreError, InputError, UsageError
from genre_cli.formats import features as feat_format
from genre_cli.formats import model as model_format
from genre_cli.formats import report as report_format
from genre_cli.formats.provenance import Provenance
from genre_cli.inference import aggregate_tracks, check_device, load_classifier
from genre_cli.papers import YANG_ZHANG_2019
from genre_cli.stage import StageResult, execute, slugify


def metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, labels: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro/per-class P/R/F1, OvR ROC AUC, confusion matrix.

    Parameters
    ----------
    y_true, y_pred : np.ndarray [shape=(n,)]
        Class indices.
    proba : np.ndarray [shape=(n, n_classes)] or None
        Scores for the AUC (None: no AUC).
    labels : list of str
        Class names (index = class).

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``balanced_accuracy``, ``macro_precision``, ``macro_recall``,
        ``macro_f1``, ``auc`` (None when undefined), ``per_class`` ({label: precision,
        recall, f1, support, auc}), ``confusion`` (list of rows, true x predicted),
        ``classes_present``. Macro averages run over the classes present in ``y_true``.
    """
    from sklearn import metrics as M

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = np.arange(len(labels))
    p, r, f1, support = M.precision_recall_fscore_support(y_true, y_pred, labels=k, zero_division=0)
    present = np.unique(y_true)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(M.accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "balanced_accuracy": float(np.mean(r[present])) if len(present) else 0.0,
        "macro_precision": float(np.mean(p[present])) if len(present) else 0.0,
        "macro_recall": float(np.mean(r[present])) if len(present) else 0.0,
        "macro_f1": float(np.mean(f1[present])) if len(present) else 0.0,
        "per_class": {
            labels[c]: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f1[c]), "support": int(support[c]), "auc": None}
            for c in k
        },
        "confusion": M.confusion_matrix(y_true, y_pred, labels=k).tolist(),
        "classes_present": [labels[c] for c in present],
        "auc": None,
    }
    if proba is not None and len(present) > 1:
        for c in present:
            out["per_class"][labels[c]]["auc"] = float(M.roc_auc_score(y_true == c, proba[:, c]))
        cols = present
        pr = proba[:, cols] / np.maximum(proba[:, cols].sum(1, keepdims=True), 1e-12)
        try:
            if len(cols) == 2:
                out["auc"] = float(M.roc_auc_score(y_true == cols[1], pr[:, 1]))
            else:
                out["auc"] = float(M.roc_auc_score(y_true, pr, multi_class="ovr", labels=cols))
        except ValueError:
            out["auc"] = None
    return out


# ----------------------------------------------------------------------------- leakage


def track_name(track_id: str) -> str:
    """The last component of a track id, without an audio file extension: the same clip's
    name under every id scheme (``blues/blues.00000`` of the ``folder`` dataset and
    ``blues.00000`` of ``gtzan`` both give ``blues.00000``)."""
    name = str(track_id).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and f".{ext.lower()}" in AUDIO_EXTENSIONS else name


def _seen_label(track_id: str, label: str, labels: set[str]) -> str:
    """A seen track's label: as the model file records it, else the last folder of its id that
    names one of the model's labels (the ``folder`` dataset's ``LABEL/...`` ids), else ""."""
    if label:
        return label
    folders = [p for p in str(track_id).replace("\\", "/").split("/")[:-1] if p in labels]
    return folders[-1] if folders else ""


def untrained_labels(model_path: str | Path, track_labels, labels: list[str]) -> dict[str, int]:
    """``{label: number of evaluated tracks}`` for the evaluated tracks whose label the model saw
    no training track of (it can still output it, but never learned it: a torch model's unit
    for it is untrained, an sklearn model gives it probability 0). Empty when the model file
    does not say its training tracks' labels."""
    known = set(labels)
    trained = {_seen_label(t, lab, known) for t, lab in model_format.seen_labels(model_path)["train"].items()} - {""}
    if not trained:
        return {}
    out: dict[str, int] = {}
    for lab in track_labels:
        if str(lab) not in trained:
            out[str(lab)] = out.get(str(lab), 0) + 1
    return dict(sorted(out.items()))


def find_leakage(
    model_path: str | Path,
    tracks: np.ndarray,
    groups: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    selection_split: bool = False,
    same_scheme: bool = False,
) -> dict[str, Any]:
    """Overlap between evaluated tracks and what the model was trained/validated on.

    A track counts as seen when its id is one the model file records, or -- the same audio
    under another id scheme (``blues.00000`` of the ``gtzan`` dataset, ``blues/blues.00000``
    of ``folder``) -- when its label and :func:`track_name` equal a seen track's. Where the
    model file does not say a seen track's label (see :func:`_seen_label`), a name match
    alone is only reported (``name_track_ids``): two collections may both hold a ``01.wav``.
    With ``same_scheme`` (the model was trained on the dataset evaluated: one id scheme) only
    exact ids count: Groove's ``drummer1/eval_session/10_soul...`` and ``drummer7/...`` are two
    performances with one name.

    With ``selection_split`` (evaluating ``--split validation``), the model's own validation
    tracks are not leakage: they are the split that selected the epoch, scored on purpose,
    and are returned as ``selection_track_ids`` (the report labels the score a tuning score).

    Parameters
    ----------
    tracks, groups : np.ndarray [shape=(n_tracks,)]
        Evaluated track ids and their groups ("" = unknown).
    labels : np.ndarray [shape=(n_tracks,)] or None
        Their label names (None: ids only).

    Returns
    -------
    dict
        ``track_ids``: evaluated tracks in the model's train/validation splits (by id, or by
        label and name); ``renamed``: ``(evaluated id, seen id)`` of those matched by label and
        name; ``name_track_ids``: other evaluated tracks whose name (only) a seen track of
        unknown label has; ``group_track_ids``: other evaluated tracks whose group the model
        saw; ``groups``: those shared groups; ``selection_track_ids``: see above.
    """
    saw = model_format.seen(model_path)
    by_split = model_format.seen_labels(model_path)
    model_labels = set(model_format.read(model_path).labels)
    seen_groups: set[str] = set(saw["train_groups"])
    sides = ["train"] if selection_split else ["train", "validation"]
    if not selection_split:
        seen_groups |= saw["validation_groups"]
    seen_groups.discard("")

    def index(splits: list[str]) -> tuple[set[str], dict[tuple[str, str], str], dict[str, str]]:
        ids: set[str] = set()
        keyed: dict[tuple[str, str], str] = {}  # (label, name) -> seen id
        unlabelled: dict[str, str] = {}  # name -> seen id
        for split in splits:
            for tid, lab in by_split[split].items():
                ids.add(tid)
                lab = _seen_label(tid, lab, model_labels)
                if lab:
                    keyed.setdefault((lab, track_name(tid)), tid)
                else:
                    unlabelled.setdefault(track_name(tid), tid)
        return ids, keyed, unlabelled

    seen_ids, seen_keys, seen_names = index(sides)
    tracks = [str(t) for t in tracks]
    labs = [""] * len(tracks) if labels is None else [str(x) for x in labels]

    if same_scheme:  # ids of one dataset: only an exact id is the same track (rock/a/01 and rock/b/01 are two)
        seen_keys, seen_names = {}, {}

    def matches(ids: set[str], keyed: dict) -> tuple[list[str], list[tuple[str, str]]]:
        exact = [t for t in tracks if t in ids]
        renamed = [(t, keyed[(lab, track_name(t))]) for t, lab in zip(tracks, labs) if t not in ids and (lab, track_name(t)) in keyed]
        return exact, renamed

    exact, renamed = matches(seen_ids, seen_keys)
    leaked = sorted(exact + [t for t, _ in renamed])
    named = sorted(t for t in tracks if t not in set(leaked) and track_name(t) in seen_names)
    shared = sorted({t for t, g in zip(tracks, groups) if g and str(g) in seen_groups} - set(leaked))
    shared_groups = sorted({str(g) for t, g in zip(tracks, groups) if t in shared})
    selection: list[str] = []
    if selection_split:
        sel_exact, sel_renamed = matches(*index(["validation"])[:2])
        selection = sorted(set(sel_exact + [t for t, _ in sel_renamed]) - set(leaked))
    return {
        "track_ids": leaked,
        "renamed": sorted(renamed),
        "name_track_ids": named,
        "name_matches": sorted((t, seen_names[track_name(t)]) for t in named),
        "group_track_ids": shared,
        "groups": shared_groups,
        "selection_track_ids": selection,
    }


def _leakage_report(model_path, leak: dict, prov: Provenance, n_tracks: int, allow: bool) -> dict[str, Any]:
    """Apply the leakage policy (module docstring): raise, or describe the overlap."""
    name = prov.group_by or "group (performer/artist)"
    n_leak, n_group = len(leak["track_ids"]), len(leak["group_track_ids"])
    renamed = leak.get("renamed", [])
    if n_leak and not allow:
        if renamed:
            how = (
                f"{len(renamed)} of them under another track id, matched by label and name: "
                f"{', '.join(f'{t} = {s}' for t, s in renamed[:3])}{', ...' if len(renamed) > 3 else ''}"
            )
        else:
            how = f"e.g. {', '.join(leak['track_ids'][:3])}"
        raise InputError(
            f"{model_path} was trained/validated on {n_leak} of the {n_tracks} evaluated tracks ({how}); its scores would be inflated",
            hint="evaluate on a split the model never saw, or pass --allow-leakage (it is printed in the report)",
        )
    if n_group and prov.group_aware and not allow:
        raise InputError(
            f"{n_group} of the {n_tracks} evaluated tracks share a {name} with the tracks {model_path} was trained/validated on "
            f"(e.g. {', '.join(leak['groups'][:3])}), although this split was made {name}-disjoint ({prov.split_method}): "
            "the model comes from another split, and its scores would be inflated",
            hint="train and evaluate on the same index, or pass --allow-leakage (it is printed in the report)",
        )
    note = ""
    n_name = len(leak.get("name_track_ids", []))
    if n_name:
        pairs = ", ".join(f"{t} ~ {s}" for t, s in leak["name_matches"][:3])
        note = (
            f"{n_name} of {n_tracks} evaluated tracks have the name of a track the model was trained/validated on "
            f"whose label its file does not record (e.g. {pairs}): if they are the same recordings, the scores are inflated. "
        )
    n_sel = len(leak.get("selection_track_ids", []))
    if n_sel:
        note = (
            f"{n_sel} of {n_tracks} evaluated tracks are the model's own validation tracks (they selected its best epoch): "
            "this is a tuning score, not a test score. "
        )
    if n_group:
        note += (
            f"{n_group} of {n_tracks} evaluated tracks share a {name} with training/validation: "
            f"this split is not {prov.group_by or 'performer'}-disjoint ({prov.split_method}); "
            "read the scores as seen-performer scores"
        )
    return {
        "tracks": n_leak,
        "track_ids": leak["track_ids"][:20],
        "renamed_tracks": len(renamed),
        "renamed": [list(p) for p in renamed[:20]],
        "name_tracks": n_name,
        "group_tracks": n_group,
        "groups": leak["groups"][:20],
        "group_column": prov.group_by,
        "group_disjoint": n_group == 0,
        "group_policy": "refuse" if prov.group_aware else "report",
        "allowed": bool(allow and (n_leak or (n_group and prov.group_aware))),
        "selection_tracks": n_sel,
        "note": note,
    }


# ----------------------------------------------------------------------------- feature parameters


def _settings(fcfg: dict[str, Any], scfg: dict[str, Any], names: set[str]) -> dict[str, Any] | None:
    """The values of the feature options in ``names`` (``fmax`` None read as sr/2) and the
    window length in seconds (``window``; absent without a segment config), or None when
    ``fcfg`` is not a :class:`~genre_cli.features.FeatureConfig` (an imported table)."""
    from genre_cli.features.config import FeatureConfig
    from genre_cli.windows import SegmentConfig

    try:
        cfg = FeatureConfig.from_params(fcfg)
    except GenreError:
        return None
    out: dict[str, Any] = {o.name: getattr(cfg, o.name) for o in FeatureConfig.options() if o.name in names}
    if "fmax" in out and out["fmax"] is None:
        out["fmax"] = cfg.sr / 2
    try:
        seg = SegmentConfig.from_params(scfg) if scfg else None
    except GenreError:
        seg = None
    if seg is not None:
        out["window"] = seg.win / seg.sr
        out["_segment"] = seg
    out["_features"] = cfg
    return out


def _value_names(model: Any) -> set[str]:
    """The feature options the values of the model's inputs depend on."""
    from genre_cli.features.kind import value_options

    return {o for feat in set(model.inputs.values()) for o in value_options(feat)}


def feature_differences(model: Any, feats: feat_format.Features) -> list[tuple[str, Any, Any]]:
    """Parameters that change the values of the model's input features and differ between the
    model's training features and ``feats``: ``[(parameter, model value, features value)]``.

    Compared: the options each input feature's values depend on
    (:func:`genre_cli.features.kind.value_options`: sample rate, ``n_fft``, hop, mel bands,
    fmin/fmax, dB or power, ``top_db``, MFCC settings, embedding network ...) and the window
    length (statistics over a longer window are other numbers, even where the shape is the
    same). Options that do not change the values (which other features were computed, jobs,
    progress) are not parameters of these features and are not compared.

    Parameters
    ----------
    model
        A loaded classifier or model description (``inputs``, ``feature_config``,
        ``segment_config``).
    """
    names = _value_names(model)
    if not names:  # imported features: nothing computed
        return []
    ours = _settings(model.feature_config, model.segment_config, names)
    theirs = _settings(feats.feature_config, feats.segment_config, names)
    if ours is None or theirs is None:
        return []
    return [(k, ours[k], theirs[k]) for k in ours if not k.startswith("_") and k in theirs and ours[k] != theirs[k]]


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def check_features(model: Any, feats: feat_format.Features, *, model_path: str | Path) -> None:
    """Refuse features computed with other parameters than the model's (:func:`feature_differences`).

    Raises
    ------
    InputError
        Naming each differing parameter (``name: model X, features Y``) and the commands that
        make matching features.
    """
    diffs = feature_differences(model, feats)
    if not diffs:
        return
    from genre_cli.features.config import FeatureConfig

    names = _value_names(model)
    ours = _settings(model.feature_config, model.segment_config, names) or {}
    cfg = ours["_features"]
    flags = [o.hint(getattr(cfg, o.name)) for o in FeatureConfig.cli_options() if o.name in names and getattr(cfg, o.name) != o.default]
    how = f"genre featurize SEGMENTS {' '.join(flags)}".rstrip()
    seg = ours.get("_segment")
    if seg is not None and any(k in ("sr", "window") for k, _, _ in diffs):
        length = f"--frames {seg.frames} --frame-hop {seg.frame_hop}" if seg.frames else f"--seconds {seg.seconds:g}"
        how = f"genre segment INDEX --sr {seg.sr} {length}, then {how}"
    units = {"window": " s", "sr": " Hz", "fmin": " Hz", "fmax": " Hz"}
    label = {o.name: o.label for o in FeatureConfig.options()}
    label |= {"sr": "sr (genre segment --sr)", "window": "window (genre segment --seconds)"}
    listed = "; ".join(f"{label.get(k, k)}: model {_show(a)}{units.get(k, '')}, features {_show(b)}{units.get(k, '')}" for k, a, b in diffs)
    inputs = ", ".join(sorted(set(model.inputs.values())))
    raise InputError(
        f"{feats.path} was computed with other parameters than the {inputs} features {model_path} was trained on "
        f"({listed}): its scores would be wrong",
        hint=f"make features the model's way: {how} (`genre info MODEL` shows its parameters)",
    )


# ----------------------------------------------------------------------------- evaluation


def evaluate_model(
    model_path: str | Path,
    feats: feat_format.Features,
    *,
    split: str,
    aggregate: str = "mean",
    allow_leakage: bool = False,
    device: str = "cpu",
    provenance: Provenance | None = None,
) -> dict[str, Any]:
    """Report for one model on the ``split`` segments of features ``feats``.

    ``provenance`` (default: the features file's) says how the split was made (leakage policy).

    The returned dict also holds ``"_arrays"`` (segment and track probabilities, true
    labels, track ids) for the artifact; :func:`run` removes it from the JSON.

    Labels are matched by name (:func:`map_labels`): the split may hold a subset of the
    model's labels, in any order; the report's ``labels_absent`` names the model's labels it
    lacks, and macro scores cover the labels present.

    Raises
    ------
    InputError
        No segments in ``split``, a label the model does not know, or leakage (see the
        module docstring).
    """
    prov = provenance if provenance is not None else feats.provenance
    seg_split = feats.segments["split"]
    rows = np.flatnonzero(seg_split == split) if split != "all" else np.arange(len(seg_split))
    if len(rows) == 0:
        have = sorted({s for s in seg_split if s})
        raise InputError(f"{feats.path}: no segments in split {split!r}; splits present: {', '.join(have) or 'none'}")
    tracks = feats.segments["track_id"][rows]
    y = feats.segments["label"][rows]
    if np.any(y < 0):
        raise InputError(f"{feats.path}: {int(np.sum(y < 0))} segments of split {split!r} have no label")
    keys, first = np.unique(tracks, return_index=True)
    groups = feats.segments["group"][rows][first] if "group" in feats.segments else np.array([""] * len(keys), dtype=object)
    names = np.array([feats.labels[i] for i in y[first]], dtype=object)
    same_scheme = artifacts.read_meta(model_path).extra.get("dataset") == feats.dataset  # one dataset: one id scheme
    found = find_leakage(model_path, keys, groups, labels=names, selection_split=split == "validation", same_scheme=same_scheme)
    leak = _leakage_report(model_path, found, prov, len(keys), allow_leakage)
    clf = load_classifier(model_path, device=device)
    check_features(clf, feats, model_path=model_path)
    y = map_labels(y, feats.labels, clf.labels, model_path=model_path, features_path=feats.path, split=split)
    absent = [lab for i, lab in enumerate(clf.labels) if i not in set(y.tolist())]
    untrained = untrained_labels(model_path, names, clf.labels)
    x = {name: feats.load(name, rows) for name in set(clf.inputs.values())}
    proba = clf.predict_proba(x)
    seg = metrics(y, proba.argmax(1), proba, clf.labels)
    tkeys, tproba = aggregate_tracks(proba, tracks, method=aggregate)
    ty = y[first]  # np.unique keys are sorted the same way in both calls
    assert np.array_equal(tkeys, keys)
    trk = metrics(ty, tproba.argmax(1), tproba, clf.labels)
    return {
        "model": str(model_path),
        "model_name": clf.name,
        "dataset": feats.dataset,
        "features": str(feats.path),
        "index": prov.index,
        "split": split,
        "split_method": prov.split_method,
        "aggregate": aggregate,
        "aggregate_note": f"track = mean of segment probabilities ({YANG_ZHANG_2019.short} sum them: same argmax)"
        if aggregate == "mean"
        else "track = majority vote of segment predictions (ties: highest mean probability)",
        "labels": clf.labels,
        "labels_absent": absent,  # the model's labels with no segment in the evaluated split: macro scores skip them
        "labels_untrained": untrained,  # {label: evaluated tracks}: labels the model saw no training track of
        "n_tracks": int(len(keys)),
        "n_segments": int(len(rows)),
        "leakage": leak,
        "segment": seg,
        "track": trk,
        "_arrays": {
            "segment_proba": proba.astype(np.float32),
            "segment_label": y.astype(np.int64),
            "segment_track": tracks,
            "track_id": keys,
            "track_proba": tproba.astype(np.float32),
            "track_label": ty.astype(np.int64),
        },
    }


def map_labels(y: np.ndarray, have: list[str], model: list[str], *, model_path, features_path, split: str) -> np.ndarray:
    """Label indices of the features file (into ``have``) as indices into the model's labels.

    Labels are matched by name, so the two files may list them in another order, and the
    evaluated split may hold only some of the model's labels (an external test set); a label
    the model does not know cannot be scored and is refused (:class:`InputError`).
    """
    y = np.asarray(y, dtype=np.int64)
    index = {lab: i for i, lab in enumerate(model)}
    used = sorted({have[i] for i in np.unique(y)})
    unknown = [lab for lab in used if lab not in index]
    if unknown:
        counts = ", ".join(f"{lab} ({int(np.sum(y == have.index(lab)))} segments)" for lab in unknown)
        raise InputError(
            f"{features_path}: the {split} split has labels that {model_path} does not know: {counts}; the model knows {', '.join(model)}",
            hint="evaluate on features whose labels the model was trained on",
        )
    lut = np.array([index.get(lab, -1) for lab in have], dtype=np.int64)
    return lut[y] if len(y) else y


def _model_file(spec: str | Path) -> Path:
    """A model file, or a built-in classifier's shipped file (:func:`genre_cli.catalog.resolve_path`)."""
    from genre_cli import catalog

    if isinstance(spec, str) and spec in catalog.BUILTINS and catalog.BUILTINS.get(spec).task == "tags":
        raise UsageError(
            f"{spec} is a tagger (independent tag likelihoods), not a classifier over a dataset's labels: it cannot be evaluated",
            hint="evaluate a classifier, e.g. one trained with `genre train FEATURES --model logreg` on `--embedding` features",
        )
    return catalog.resolve_path(spec)


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
    """Evaluate models on a split; ``summary["reports"]`` holds one report per model.

    The artifact holds the reports (attr ``report``, JSON) and, per model ``i``, group
    ``model<i>`` with ``segment_confusion``, ``track_confusion``, ``segment_proba``,
    ``segment_label``, ``segment_track``, ``track_id``, ``track_proba``, ``track_label``.
    A ``.json`` copy of the reports is written beside it.
    """
    split = check_score_split(split)
    check_device(device)
    if not model_paths:
        raise UsageError("give at least one model file")
    if aggregate not in ("mean", "vote"):
        raise UsageError(f"unknown aggregation {aggregate!r}; use mean or vote")
    model_paths = [_model_file(m) for m in model_paths]
    feats = feat_format.read(features_path)
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    for i, m in enumerate(model_paths):
        meta = artifacts.read_meta(m)
        artifacts.check_meta(meta, model_format.KIND.stage)
        upstream[f"model{i}"] = (meta.fingerprint, m)
    params = {"split": split, "aggregate": aggregate, "allow_leakage": allow_leakage, "report_version": report_format.REPORT_VERSION}
    names = "+".join(slugify(Path(m).stem) for m in model_paths)[:80]

    def build(f) -> dict[str, Any]:
        reports = [
            evaluate_model(m, feats, split=split, aggregate=aggregate, allow_leakage=allow_leakage, device=device) for m in model_paths
        ]
        arrays = [rep.pop("_arrays") for rep in reports]
        report_format.write(f, reports, arrays, prov=feats.provenance)
        return {"reports": reports}

    result = execute(
        stage=report_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out,
        workdir=workdir,
        dataset=feats.dataset,
        slug=f"eval-{split}-{names}",
        force=force,
        dry_run=dry_run,
    )
    if result.status == "skipped":
        result.summary["reports"] = report_format.read(result.path)
    if result.status != "would run":
        report_format.write_json(result.path, result.summary["reports"])
    return result


def write_plots(reports: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """PNG plots for each report: confusion matrices (track and segment level, counts and
    row-normalised) and the model's training curves (when it has a history).

    Returns
    -------
    list of Path
        The files written, named ``<model-file-stem>-confusion-{track,segment}.png`` and
        ``<model-file-stem>-history.png`` (prefixed ``<i>-`` when two models share a stem).
    """
    from genre_cli import plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = [slugify(Path(r["model"]).stem) for r in reports]
    written: list[Path] = []
    for i, (r, stem) in enumerate(zip(reports, stems)):
        if stems.count(stem) > 1:
            stem = f"{i}-{stem}"
        for level in ("track", "segment"):
            m = r[level]
            title = f"{r['model_name']} · {r['dataset']} {r['split']} split · {level} level (n={m['n']}) · accuracy {m['accuracy']:.3f}"
            p = out_dir / f"{stem}-confusion-{level}.png"
            plots.confusion_png(np.array(m["confusion"]), r["labels"], p, title=title)
            written.append(p)
        try:
            hist = model_format.history(r["model"])
        except GenreError:
            hist = []
        if hist:
            p = out_dir / f"{stem}-history.png"
            plots.history_png(
                hist, p, title=f"{r['model_name']} training curves ({r['dataset']}; validation = the model's validation split)"
            )
            written.append(p)
    return written
