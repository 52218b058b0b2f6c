"""Loaded classifiers: input slots, normalisation, devices, batched probabilities.

Shared by ``train`` (validation), ``evaluate`` and ``predict`` (and ``serve``) so all of them
compute probabilities the same way. The model file's layout is :mod:`genre_cli.formats.model`.
:func:`load_classifier` takes a model file or a built-in model's name (:mod:`genre_cli.catalog`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.errors import ArtifactError, DeviceError, UsageError
from genre_cli.features.kind import SLOTS, make_hint, slot_choices
from genre_cli.formats import model as model_format
from genre_cli.formats import pretrained as pretrained_format


def resolve_inputs(model: str, slots: tuple[str, ...], available: list[str], *, prefer: dict[str, str] | None = None) -> dict[str, str]:
    """Map each of a model's input slots to a feature present in the features file.

    Raises
    ------
    UsageError
        A slot cannot be filled; the message names the ``genre featurize`` flags that would.
    """
    prefer = prefer or {}
    out: dict[str, str] = {}
    for slot in slots:
        choices = slot_choices(slot)
        if slot in prefer:
            if prefer[slot] not in available or prefer[slot] not in choices:
                raise UsageError(
                    f"model {model!r}: feature {prefer[slot]!r} cannot fill its {slot} input (available: {', '.join(available)})"
                )
            out[slot] = prefer[slot]
            continue
        found = [c for c in choices if c in available]
        if not found:
            flags = " or ".join(f"`{make_hint(c)}`" for c in choices)
            raise UsageError(
                f"model {model!r} needs {'a ' + slot if slot in SLOTS else 'the ' + slot + ' feature'} input "
                f"({', '.join(choices)}), but the features file has only: {', '.join(available) or 'nothing'}",
                hint=f"run `genre featurize` with {flags}",
            )
        out[slot] = found[0]
    return out


def check_device(spec: str | None) -> str:
    """``spec`` checked before any work, whatever the model kind: an unknown spelling is a
    :class:`UsageError`, CUDA asked for without a CUDA device a :class:`DeviceError` (an
    sklearn model asked to run on CUDA is refused too, never silently run on the CPU).
    Imports torch only when CUDA is asked for. Returns the spelling in lower case."""
    s = (spec or "auto").lower()
    if s in ("auto", "cpu"):
        return s
    if re.fullmatch(r"cuda(:\d+)?", s):
        resolve_device(s)
        return s
    raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")


def resolve_device(spec: str = "auto"):
    """``auto`` → CUDA when available else CPU; ``cuda``/``cuda:N`` without CUDA → DeviceError."""
    import torch

    spec = (spec or "auto").lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {spec} asked for CUDA, but no CUDA device is available (torch {torch.__version__})",
                hint="use --device cpu or auto",
            )
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    if spec == "cpu":
        return torch.device("cpu")
    raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")


def normalise(x: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """(x - mean) / std along the last axis (statistics of the training split)."""
    if stats is None:
        return x.astype(np.float32, copy=False)
    mean, std = stats
    return ((x - mean) / std).astype(np.float32, copy=False)


@dataclass
class Classifier:
    """A trained model plus everything needed to feed it (from a model artifact).

    ``output`` says how to read the model's scores: ``"softmax"`` (one probability
    distribution over the labels: what ``genre train`` makes) or ``"sigmoid"`` (independent
    per-label likelihoods, e.g. a multi-label tagger; rows need not sum to 1).
    """

    name: str
    kind: str  # "torch" | "sklearn"
    labels: list[str]
    inputs: dict[str, str]  # slot -> feature name
    input_shapes: dict[str, tuple[int, ...]]
    norm: dict[str, tuple[np.ndarray, np.ndarray]]
    feature_config: dict[str, Any]
    segment_config: dict[str, Any]
    model: Any
    device: Any = None
    config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: "softmax": probabilities over ``labels`` that sum to 1; "sigmoid": independent
    #: likelihoods in [0, 1], one per label (a tagger's tags; rows do not sum to 1).
    output: str = "softmax"

    def prepare(self, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Slot -> normalised float32 array for the features in ``feats`` (keyed by feature name)."""
        out = {}
        for slot, name in self.inputs.items():
            if name not in feats:
                raise UsageError(f"model {self.name!r} needs feature {name!r}", hint=f"run `genre featurize` with `{make_hint(name)}`")
            x = feats[name]
            if tuple(x.shape[1:]) != tuple(self.input_shapes[slot]):
                raise UsageError(
                    f"feature {name!r} has shape {tuple(x.shape[1:])}, the model was trained on {tuple(self.input_shapes[slot])}"
                )
            out[slot] = normalise(x, self.norm.get(name))
        return out

    def predict_proba(self, feats: dict[str, np.ndarray], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities [shape=(n, n_classes)] for features keyed by feature name."""
        return self.proba_prepared(self.prepare(feats), batch_size=batch_size)

    def proba_prepared(self, x: dict[str, np.ndarray], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities for already prepared (slot-keyed, normalised) inputs.

        sklearn outputs are placed on the full label list by :func:`sklearn_proba`; a torch
        model's logits go through a softmax, or a sigmoid when :attr:`output` is ``"sigmoid"``.
        """
        n = len(next(iter(x.values())))
        if self.kind == "tagger":  # the input feature is the tag likelihoods themselves
            return np.ascontiguousarray(x[next(iter(self.inputs))], dtype=np.float32)
        if self.kind == "sklearn":
            flat = np.concatenate([x[s].reshape(n, -1) for s in self.inputs], axis=1)
            return sklearn_proba(self.model, flat, len(self.labels))
        import torch

        self.model.eval()
        squash = torch.sigmoid if self.output == "sigmoid" else functools.partial(torch.softmax, dim=-1)
        outs = []
        with torch.inference_mode():
            for i in range(0, n, batch_size):
                batch = {s: torch.from_numpy(np.ascontiguousarray(v[i : i + batch_size])).to(self.device) for s, v in x.items()}
                outs.append(squash(self.model(**batch).float()).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(self.labels)), dtype=np.float32)


def sklearn_proba(model, x: np.ndarray, n_labels: int) -> np.ndarray:
    """Probabilities of a fitted sklearn classifier over the FULL label list.

    An estimator's ``predict_proba`` / ``decision_function`` has one column per class it saw
    in training (``classes_``, sorted label indices), which is not ``0 .. n_labels - 1``
    whenever a label had no training example. Columns are placed by ``classes_``; a label
    never seen gets probability 0.

    Parameters
    ----------
    model : fitted sklearn estimator or pipeline
    x : np.ndarray [shape=(n, d)]
    n_labels : int >= 2
        Length of the model's label list.

    Returns
    -------
    np.ndarray [shape=(n, n_labels), dtype=float32]
        Rows sum to 1. Margin classifiers without ``predict_proba`` (``svm`` with
        ``probability=False``) give the softmax of their decision values: a monotone score
        per class, so argmax and AUC are those of the classifier itself.

    Raises
    ------
    ArtifactError
        ``classes_`` are not label indices in ``[0, n_labels)`` (a model from elsewhere).
    """
    classes = np.asarray(getattr(model, "classes_", np.arange(n_labels)))
    if classes.ndim != 1 or classes.dtype.kind not in "iu" or len(classes) < 1 or classes.min() < 0 or classes.max() >= n_labels:
        raise ArtifactError(f"the sklearn model's classes {classes.tolist()[:20]} are not indices of its {n_labels} labels")
    if hasattr(model, "predict_proba"):
        p = np.asarray(model.predict_proba(x), dtype=np.float64)
    else:
        z = np.asarray(model.decision_function(x), dtype=np.float64)
        if z.ndim == 1:  # binary: the margin of classes_[1]
            z = np.stack([-z, z], axis=1)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        p = z / z.sum(axis=1, keepdims=True)
    if p.shape[1] != len(classes):
        raise ArtifactError(f"the sklearn model gives {p.shape[1]} columns for {len(classes)} classes")
    out = np.zeros((len(x), n_labels), dtype=np.float32)
    out[:, classes] = p
    return out


def load_classifier(path: str | Path, *, device: str = "cpu", weights: bool = True) -> Classifier:
    """Load a model: a file written by ``genre train``, or a built-in model by name.

    Parameters
    ----------
    path : str or Path
        A model file, or the name of a built-in model (``genres``, ``musicnn-msd``,
        ``musicnn-mtt``): names are resolved by :mod:`genre_cli.catalog`, the one place that
        does it (a ``str`` equal to a registered name; a ``Path``, or ``./genres``, is a file).
        A built-in tagger (or a weight file from ``genre fetch model musicnn``) loads as a
        classifier of kind ``tagger`` with ``output="sigmoid"``: its "probabilities" are the
        50 independent tag likelihoods.
    weights : bool
        False reads and checks only the description (labels, inputs, feature and segment
        parameters, normalisation) and leaves ``model`` None: no torch import, so a caller can
        start decoding audio while the model itself loads. No pickle is ever unpickled.
    """
    from genre_cli import artifacts, catalog

    if isinstance(path, str) and path in catalog.BUILTINS:
        return catalog.BUILTINS.get(path).load(device=device, weights=weights)
    path = catalog.resolve_path(path)
    if path.exists() and artifacts.read_meta(path).stage == pretrained_format.KIND.stage:
        return _tagger(path, weights=weights)
    with model_format.open_model(path) as (d, group):
        if not weights:
            return Classifier(
                d.name,
                d.kind,
                d.labels,
                d.inputs,
                d.input_shapes,
                d.norm,
                d.feature_config,
                d.segment_config,
                None,
                None,
                d.model_config,
                path,
            )
        from genre_cli.models import build_model, persist
        from genre_cli.models.base import for_inference

        dev = None
        if d.kind == "torch":
            dev = resolve_device(device)
            model = build_model(d.name, n_classes=len(d.labels), input_shapes=d.input_shapes, **d.model_config)
            state = persist.load_torch_state(group)
            try:
                model.load_state_dict(state)
            except (RuntimeError, KeyError) as exc:
                raise ArtifactError(f"{path}: weights do not fit model {d.name!r}: {str(exc).splitlines()[0]}") from None
            for_inference(model.to(dev))  # folds BatchNorm into convs, channels_last: never trained again
        elif d.kind == "sklearn":
            model = persist.load_sklearn(group)
        else:
            raise ArtifactError(f"{path}: unknown model kind {d.kind!r}")
    return Classifier(
        d.name, d.kind, d.labels, d.inputs, d.input_shapes, d.norm, d.feature_config, d.segment_config, model, dev, d.model_config, path
    )


class _Likelihoods:
    """The "model" of a tagger: its input feature already is the tag likelihoods."""

    def __repr__(self) -> str:
        return "tag likelihoods (musicnn_tags feature)"


def _tagger(path: Path, *, weights: bool) -> Classifier:
    """A musicnn weight file as a classifier: 3-s windows at 16 kHz, the ``musicnn_tags``
    feature (mean tag likelihoods of the window's patch) as output.

    The feature is computed with the shipped weights of the file's variant, so a weight file
    is accepted only when it is the same conversion as the shipped one (equal fingerprints:
    same wheel, same sha256, same pre-processing).
    """
    from genre_cli.pretrained.variants import variant
    from genre_cli.pretrained.weights import shipped_path
    from genre_cli.windows import SegmentConfig

    info = pretrained_format.read_info(path)
    name = variant(info["name"]).name
    if (
        path.resolve() != shipped_path(name).resolve()
        and pretrained_format.read_info(shipped_path(name))["fingerprint"] != info["fingerprint"]
    ):
        raise ArtifactError(
            f"{path}: a {name} weight file converted from another source than the shipped one; "
            f"predict runs the shipped {name} weights only",
            hint=f"use the built-in name {name}",
        )
    labels = list(info["labels"])
    return Classifier(
        name,
        "tagger",
        labels,
        {"vector": "musicnn_tags"},
        {"vector": (len(labels),)},
        {},
        {"embedding": name, "sr": 16000},
        SegmentConfig(sr=16000, seconds=3.0).to_params(),
        _Likelihoods() if weights else None,
        None,
        {"dataset": info["dataset"], "citation": info["citation"]},
        path,
        output="sigmoid",
    )


def aggregate_tracks(proba: np.ndarray, track: np.ndarray, *, method: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Track-level probabilities from segment probabilities.

    Parameters
    ----------
    proba : np.ndarray [shape=(n_segments, n_classes)]
    track : np.ndarray [shape=(n_segments,)]
        Track key of each segment.
    method : {"mean", "vote"}
        ``mean`` averages probabilities (Yang & Zhang 2019 sums them: same argmax); ``vote`` counts
        segment argmaxes (ties → highest mean probability).

    Returns
    -------
    keys : np.ndarray [shape=(n_tracks,)]  (sorted unique track keys)
    track_proba : np.ndarray [shape=(n_tracks, n_classes)]
    """
    keys, inv = np.unique(track, return_inverse=True)
    n_c = proba.shape[1]
    sums = np.zeros((len(keys), n_c))
    np.add.at(sums, inv, proba)
    counts = np.bincount(inv, minlength=len(keys))[:, None]
    mean = sums / np.maximum(counts, 1)
    if method == "mean":
        return keys, mean.astype(np.float32)
    if method == "vote":
        votes = np.zeros((len(keys), n_c))
        np.add.at(votes, (inv, proba.argmax(1)), 1)
        score = votes / np.maximum(counts, 1) + 1e-6 * mean  # tie-break by mean probability
        return keys, score.astype(np.float32)
    raise UsageError(f"unknown aggregation {method!r}; use mean or vote")
