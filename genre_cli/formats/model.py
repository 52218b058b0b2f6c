"""The model artifact (stage ``train``): weights plus everything needed to feed the model.

Layout (schema 1)::

    /weights/...              torch state-dict tensors as datasets, or the sklearn model's safe
                              form (:mod:`genre_cli.models.persist`; never pickle)
    /norm/<feature>/mean,std  normalisation statistics (train split) for each input feature
    /splits/train, /splits/validation, /splits/train_groups, /splits/validation_groups
                              track ids (and groups) the model saw, for evaluate's leakage guard
    /splits/train_labels, /splits/validation_labels
                              each seen track's label name (same order as its id; "" unknown;
                              absent in files written before it was recorded)
    attrs: model, model_kind, model_config, inputs (slot -> feature), input_shapes, labels,
           feature_config, segment_config, history (per-epoch JSON), best_epoch, epochs_run,
           train (resolved hyper-parameters), train_sources (flag | recipe | paper | plain per setting),
           train_notes (why an automatic setting resolved as it did), device, amp, world_size, stream,
           wall_seconds, features_fingerprint, provenance (JSON, from the features file),
           card (JSON, optional: a model card added after training by :func:`write_card` --
           training data, split, measured accuracy and the command that measured it)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError
from genre_cli.formats import provenance
from genre_cli.formats.provenance import Provenance

KIND = artifacts.register_kind("train", schema=1, maker="genre train")
#: The splits whose track ids (and groups) a model file records.
SEEN_SPLITS = ("train", "validation")


@dataclass
class ModelFile:
    """What a model artifact says about its model, without the weights."""

    path: Path
    meta: artifacts.ArtifactMeta
    name: str
    kind: str  #: "torch" | "sklearn"
    labels: list[str]
    inputs: dict[str, str]  #: slot -> feature name
    input_shapes: dict[str, tuple[int, ...]]
    norm: dict[str, tuple[np.ndarray, np.ndarray]]
    model_config: dict[str, Any]
    feature_config: dict[str, Any]
    segment_config: dict[str, Any]
    provenance: Provenance = field(default_factory=Provenance)


def write(
    f,
    *,
    name: str,
    kind: str,
    labels: list[str],
    inputs: dict[str, str],
    input_shapes: dict[str, tuple[int, ...]],
    norm: dict[str, tuple[np.ndarray, np.ndarray]],
    model_config: dict[str, Any],
    feature_config: dict[str, Any],
    segment_config: dict[str, Any],
    save_weights: Callable[[h5py.Group], None],
    tracks: dict[str, np.ndarray],
    history: list[dict[str, Any]],
    best_epoch: int,
    train: dict[str, Any],
    train_sources: dict[str, str],
    device: str,
    amp: str,
    world_size: int,
    stream: bool,
    wall_seconds: float,
    features_fingerprint: str,
    prov: Provenance,
    train_notes: dict[str, str] | None = None,
) -> None:
    """Write a trained model into the open artifact ``f``.

    ``save_weights(group)`` stores the weights into ``/weights``; ``tracks`` is the features
    file's track table (``track_id``, ``label``, ``group``, ``split``): the ids, label names and
    groups of its train and validation tracks are recorded for evaluate's leakage guard.
    """
    save_weights(f.create_group("weights"))
    ng = f.create_group("norm")
    for feat, (mean, std) in norm.items():
        g = ng.create_group(feat)
        g.create_dataset("mean", data=mean)
        g.create_dataset("std", data=std)
    sp = f.create_group("splits")
    str_dt = h5py.string_dtype("utf-8")
    for split in SEEN_SPLITS:
        m = tracks["split"] == split
        sp.create_dataset(split, data=np.array(list(tracks["track_id"][m]), dtype=object), dtype=str_dt)
        names = [labels[i] if 0 <= i < len(labels) else "" for i in np.asarray(tracks["label"])[m].tolist()]
        sp.create_dataset(f"{split}_labels", data=np.array(names, dtype=object), dtype=str_dt)
        sp.create_dataset(f"{split}_groups", data=np.array(sorted({g for g in tracks["group"][m] if g}), dtype=object), dtype=str_dt)
    for k, v in {
        "model": name,
        "model_kind": kind,
        "model_config": model_config,
        "inputs": inputs,
        "input_shapes": {k: list(v) for k, v in input_shapes.items()},
        "labels": labels,
        "feature_config": feature_config,
        "segment_config": segment_config,
        "history": history,
        "train": train,
        "train_sources": train_sources,
        "train_notes": train_notes or {},
    }.items():
        f.attrs[k] = artifacts.canonical_json(v) if not isinstance(v, str) else v
    f.attrs["best_epoch"] = int(best_epoch)
    f.attrs["epochs_run"] = len(history)
    f.attrs["device"] = str(device)
    f.attrs["amp"] = amp
    f.attrs["world_size"] = int(world_size)
    f.attrs["stream"] = bool(stream)
    f.attrs["wall_seconds"] = float(round(wall_seconds, 3))
    f.attrs["features_fingerprint"] = features_fingerprint
    provenance.write(f, prov)


@contextlib.contextmanager
def open_model(path: str | Path) -> Iterator[tuple[ModelFile, h5py.Group]]:
    """Read and check a model artifact's description; yields ``(ModelFile, /weights group)``
    while the file is open (errors reading the weights become :class:`ArtifactError`)."""
    path = Path(path)
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        a = f.attrs
        try:
            name = str(a["model"])
            kind = str(a["model_kind"])
            labels = artifacts.get_json_attr(f, "labels", [])
            inputs = artifacts.get_json_attr(f, "inputs", {})
            shapes = artifacts.get_json_attr(f, "input_shapes", {})
            config = artifacts.get_json_attr(f, "model_config", {})
            fcfg = artifacts.get_json_attr(f, "feature_config", {})
            scfg = artifacts.get_json_attr(f, "segment_config", {})
        except KeyError as exc:
            raise ArtifactError(f"{path}: model file lacks attribute {exc}") from None
        _check_attrs(path, labels, inputs, shapes, config, fcfg, scfg)
        norm = {}
        for slot, feat in inputs.items():
            g = f.get(f"norm/{feat}")
            if g is not None:
                mean, std = (artifacts.require_dataset(g, k, ndim=1, kind="f")[()] for k in ("mean", "std"))
                width = shapes[slot][-1]
                if len(mean) != width or len(std) != width:
                    raise ArtifactError(
                        f"{path}: /norm/{feat} has {len(mean)} means and {len(std)} stds; its input {slot!r} has {width} columns"
                    )
                norm[feat] = (mean, std)
        if "weights" not in f:
            raise ArtifactError(f"{path}: model file has no /weights group")
        prov = provenance.read(f)
        desc = ModelFile(
            path,
            meta,
            name,
            kind,
            labels,
            inputs,
            shapes,
            norm,
            config,
            fcfg,
            scfg,
            prov or Provenance(dataset=str(a.get("dataset", "dataset"))),
        )
        yield desc, f["weights"]


def read(path: str | Path) -> ModelFile:
    """The model's description (no weights read)."""
    with open_model(path) as (desc, _):
        return desc


def _check_attrs(path: Path, labels, inputs, shapes, config, fcfg, scfg) -> None:
    """Raise :class:`ArtifactError` unless a model file's JSON attributes have the types
    ``genre train`` writes (a file from elsewhere may hold anything); turns ``shapes``
    lists into tuples in place."""

    def bad(name: str, want: str, got) -> ArtifactError:
        return ArtifactError(f"{path}: model attribute {name!r} must be {want}, got {str(got)[:80]!r}")

    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise bad("labels", "a JSON list of at least two strings", labels)
    if not isinstance(inputs, dict) or not inputs or not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
        raise bad("inputs", "a JSON object {slot: feature name}", inputs)
    if not isinstance(shapes, dict) or set(shapes) != set(inputs):
        raise bad("input_shapes", f"a JSON object with one shape per input slot ({', '.join(inputs)})", shapes)
    for slot, shape in shapes.items():
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise bad("input_shapes", f"positive integer lists; slot {slot!r} has", shape)
        shapes[slot] = tuple(shape)
    for name, value in (("model_config", config), ("feature_config", fcfg), ("segment_config", scfg)):
        if not isinstance(value, dict):
            raise bad(name, "a JSON object", value)


def seen_labels(path: str | Path) -> dict[str, dict[str, str]]:
    """Label name of each track the model was trained / validated on: ``{split: {track id:
    label}}`` for ``train`` and ``validation``; ``""`` where the file does not say (written
    before labels were recorded)."""
    out: dict[str, dict[str, str]] = {}
    with h5py.File(path, "r") as f:
        for split in SEEN_SPLITS:
            ids = list(f[f"splits/{split}"].asstr()[()]) if f"splits/{split}" in f else []
            key = f"splits/{split}_labels"
            labs = list(f[key].asstr()[()]) if key in f and f[key].shape == (len(ids),) else [""] * len(ids)
            out[split] = dict(zip(ids, labs))
    return out


def seen(path: str | Path) -> dict[str, set[str]]:
    """Track ids and groups the model was trained and validated on: keys ``train``,
    ``validation``, ``train_groups``, ``validation_groups`` (empty sets when absent)."""
    out: dict[str, set[str]] = {}
    with h5py.File(path, "r") as f:
        for split in SEEN_SPLITS:
            for key in (split, f"{split}_groups"):
                out[key] = set(f[f"splits/{key}"].asstr()[()]) if f"splits/{key}" in f else set()
    return out


#: The attribute holding a model card (:func:`write_card`).
CARD = "card"


def write_card(path: str | Path, card: dict[str, Any]) -> None:
    """Add a model card to a complete model file: what it was trained on, how its accuracy was
    measured and what it measured (e.g. the shipped ``genres`` model's cross-validation).

    The card is written into a copy that replaces the file atomically; it is not a parameter
    and does not change the file's fingerprint.
    """
    import os
    import shutil

    path = Path(path)
    read(path)  # a complete, readable model file
    with artifacts.file_lock(path):
        tmp = artifacts.temp_path_for(path)
        try:
            shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+") as f:
                f.attrs[CARD] = artifacts.canonical_json(card)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def read_card(path: str | Path) -> dict[str, Any]:
    """The model card of a model file (``{}`` when it has none)."""
    with artifacts.open_artifact(path, KIND.stage) as (f, _):
        card = artifacts.get_json_attr(f, CARD, {}) or {}
    return card if isinstance(card, dict) else {}


@dataclass
class Training:
    """What a model file records about its training (for model cards).

    Attributes
    ----------
    best_epoch, epochs_run : int
        The epoch kept (selected on validation) and the epochs run (0 when not recorded).
    best : dict
        The kept epoch's history entry: ``val_track_accuracy``, ``val_accuracy`` (segment
        level), ``val_loss``, ``train_accuracy`` ... as far as recorded (``{}`` otherwise).
    tracks, groups : dict of str -> int
        Number of tracks and of groups per seen split (``train``, ``validation``).
    created : str
        ISO time the file was written.
    """

    best_epoch: int = 0
    epochs_run: int = 0
    best: dict[str, Any] = field(default_factory=dict)
    tracks: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    created: str = ""


def training(path: str | Path) -> Training:
    """The training record of a model file (no weights read); missing parts are empty."""
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        hist = [h for h in (artifacts.get_json_attr(f, "history", []) or []) if isinstance(h, dict)]
        best_epoch = int(f.attrs.get("best_epoch", 0) or 0)
        out = Training(best_epoch=best_epoch, epochs_run=int(f.attrs.get("epochs_run", len(hist)) or 0), created=meta.created)
        out.best = next((h for h in hist if h.get("epoch") == best_epoch), {})
        for split in SEEN_SPLITS:
            for key, into in ((split, out.tracks), (f"{split}_groups", out.groups)):
                if f"splits/{key}" in f:
                    into[split] = int(f[f"splits/{key}"].shape[0])
    return out


def history(path: str | Path) -> list[dict[str, Any]]:
    """Per-epoch training history (``[]`` when absent)."""
    with artifacts.open_artifact(path, KIND.stage) as (f, _):
        hist = artifacts.get_json_attr(f, "history", []) or []
    return [h for h in hist if isinstance(h, dict)]
