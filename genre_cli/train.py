"""``train`` stage: fit a registered model on the train split, select on validation, save.

Layout of a model artifact (stage ``train``)::

    /weights/...              torch state-dict tensors as datasets, or the sklearn model's safe form
    /norm/<feature>/mean,std  normalisation statistics (train split) for each input feature
    /splits/train, /splits/validation, /splits/train_groups, /splits/validation_groups
                              track ids (and groups) the model saw, for evaluate's leakage guard
    attrs: model, model_kind, model_config, inputs (slot -> feature), input_shapes, labels,
           feature_config, segment_config, history (per-epoch JSON), best_epoch, device
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import InputError, UsageError
from genre_cli.featurize import Features, load_features
from genre_cli.inference import Classifier, aggregate_tracks, resolve_device, resolve_inputs
from genre_cli.stage import StageResult, execute, slugify


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (``device`` is not part of the fingerprint)."""

    model: str = "cnn6"
    model_config: dict[str, Any] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)  # slot -> feature override
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    patience: int = 10
    seed: int = 0
    device: str = "auto"

    def to_params(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("device")
        return d


def run(
    features_path: str | Path,
    *,
    config: TrainConfig,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
    on_epoch=None,
) -> StageResult:
    """Train ``config.model`` on a features artifact and write the model artifact.

    Returns
    -------
    StageResult
        ``summary``: ``model``, ``best_epoch``, ``val_track_accuracy``, ``epochs_run``,
        ``seconds``, ``device``, ``n_train``/``n_val`` segments.
    """
    from genre_cli.models import model_info

    info = model_info(config.model)  # unknown name → UsageError with the valid names
    feats = load_features(features_path)
    suggested = {slot: name for slot, name in (info.get("features") or {}).items() if name in feats.names}
    inputs = resolve_inputs(config.model, tuple(info["inputs"]), feats.names, prefer=suggested | dict(config.features))
    params = config.to_params() | {"inputs": inputs}
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    slug = f"model-{slugify(config.model)}-s{config.seed}"

    def build(f) -> dict[str, Any]:
        return _build(f, feats, config, info, inputs, show_progress=show_progress, on_epoch=on_epoch)

    return execute(
        stage="train", params=params, upstream=upstream, build=build, out=out, workdir=workdir,
        dataset=feats.dataset, slug=slug, force=force, dry_run=dry_run,
    )


def _split_rows(feats: Features, split: str) -> np.ndarray:
    return np.flatnonzero(feats.segments["split"] == split)


def _build(f, feats: Features, cfg: TrainConfig, info: dict, inputs: dict[str, str], *, show_progress: bool, on_epoch) -> dict[str, Any]:
    tr_rows = _split_rows(feats, "train")
    va_rows = _split_rows(feats, "validation")
    if len(tr_rows) == 0:
        raise InputError(f"{feats.path}: no segments in the train split", hint="check the index's splits with `genre info`")
    labels_all = feats.segments["label"]
    if np.any(labels_all[tr_rows] < 0):
        raise InputError(f"{feats.path}: some training segments have no label")
    n_classes = len(feats.labels)
    shapes = {slot: tuple(feats.shapes[name]) for slot, name in inputs.items()}
    norm = {name: feats.norm[name] for name in inputs.values() if name in feats.norm}
    clf = Classifier(cfg.model, info["kind"], feats.labels, inputs, shapes, norm, feats.feature_config, feats.segment_config, None, config=cfg.model_config)

    def load(rows):
        return clf.prepare({name: feats.load(name, rows) for name in set(inputs.values())})

    x_tr, y_tr = load(tr_rows), labels_all[tr_rows]
    x_va, y_va = (load(va_rows), labels_all[va_rows]) if len(va_rows) else (None, None)
    t0 = time.perf_counter()
    if info["kind"] == "sklearn":
        history, best_epoch, device = _fit_sklearn(clf, cfg, x_tr, y_tr)
    else:
        history, best_epoch, device = _fit_torch(clf, cfg, n_classes, x_tr, y_tr, x_va, y_va, feats.segments["track_id"][va_rows] if len(va_rows) else None, show_progress, on_epoch)
    seconds = time.perf_counter() - t0
    val_acc = None
    if x_va is not None:
        val_acc = _track_accuracy(clf, x_va, y_va, feats.segments["track_id"][va_rows])
    _write_model(f, clf, feats, history, best_epoch, str(device))
    return {
        "model": cfg.model, "best_epoch": best_epoch, "epochs_run": len(history), "seconds": round(seconds, 2),
        "device": str(device), "n_train": int(len(tr_rows)), "n_val": int(len(va_rows)),
        "val_track_accuracy": val_acc, "inputs": inputs,
    }


def _track_accuracy(clf: Classifier, x: dict[str, np.ndarray], y: np.ndarray, tracks: np.ndarray) -> float:
    p = clf.proba_prepared(x)
    keys, tp = aggregate_tracks(p, tracks)
    ty = np.array([y[tracks == k][0] for k in keys])
    return float(np.mean(tp.argmax(1) == ty))


def _fit_sklearn(clf: Classifier, cfg: TrainConfig, x_tr, y_tr):
    from genre_cli.models import build_model

    n = len(y_tr)
    flat = np.concatenate([x_tr[s].reshape(n, -1) for s in clf.inputs], axis=1)
    model = build_model(cfg.model, n_classes=len(clf.labels), input_shapes=clf.input_shapes, random_state=cfg.seed, **cfg.model_config) if _accepts_seed(cfg.model) else build_model(cfg.model, n_classes=len(clf.labels), input_shapes=clf.input_shapes, **cfg.model_config)
    model.fit(flat, y_tr)
    clf.model = model
    acc = float(np.mean(model.predict(flat) == y_tr))
    return [{"epoch": 1, "train_accuracy": acc}], 1, "cpu"


def _accepts_seed(name: str) -> bool:
    from genre_cli.models import model_info

    return "random_state" in model_info(name).get("config", {})


def _fit_torch(clf: Classifier, cfg: TrainConfig, n_classes: int, x_tr, y_tr, x_va, y_va, va_tracks, show_progress: bool, on_epoch):
    import torch

    from genre_cli.models import build_model

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    model = build_model(cfg.model, n_classes=n_classes, input_shapes=clf.input_shapes, **cfg.model_config).to(device)
    clf.model, clf.device = model, device
    opt_cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD}.get(cfg.optimizer)
    if opt_cls is None:
        raise UsageError(f"unknown optimizer {cfg.optimizer!r}; valid: adamw, adam, adadelta, sgd")
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = {s: torch.from_numpy(v) for s, v in x_tr.items()}
    yt = torch.from_numpy(y_tr.astype(np.int64))
    n = len(yt)
    history, best, best_state, best_epoch, stale = [], (-1.0, float("inf")), None, 0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.from_numpy(rng.permutation(n))
        tot_loss, correct = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2 and n > 1:
                continue  # batch-norm needs two samples
            batch = {s: v[idx].to(device) for s, v in xt.items()}
            target = yt[idx].to(device)
            opt.zero_grad(set_to_none=True)
            logits = model(**batch)
            loss = loss_fn(logits, target)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == target).sum())
        rec = {"epoch": epoch, "loss": tot_loss / n, "train_accuracy": correct / n, "seconds": time.perf_counter() - t0}
        if x_va is not None:
            p = clf.proba_prepared(x_va)
            rec["val_loss"] = float(-np.mean(np.log(p[np.arange(len(y_va)), y_va] + 1e-9)))
            keys, tp = aggregate_tracks(p, va_tracks)
            ty = np.array([y_va[va_tracks == k][0] for k in keys])
            rec["val_track_accuracy"] = float(np.mean(tp.argmax(1) == ty))
            score = (rec["val_track_accuracy"], rec["val_loss"])
            improved = score[0] > best[0] or (score[0] == best[0] and score[1] < best[1])
        else:
            improved = True
        history.append(rec)
        if on_epoch:
            on_epoch(rec)
        if improved:
            best = (rec.get("val_track_accuracy", 0.0), rec.get("val_loss", 0.0))
            best_state, best_epoch, stale = copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history, best_epoch, device


def _write_model(f, clf: Classifier, feats: Features, history: list, best_epoch: int, device: str) -> None:
    from genre_cli.models import persist

    g = f.create_group("weights")
    if clf.kind == "torch":
        persist.save_torch(g, clf.model)
    else:
        persist.save_sklearn(g, clf.model)
    norm = f.create_group("norm")
    for name, (mean, std) in clf.norm.items():
        ng = norm.create_group(name)
        ng.create_dataset("mean", data=mean)
        ng.create_dataset("std", data=std)
    sp = f.create_group("splits")
    s = feats.tracks
    str_dt = artifacts.h5py.string_dtype("utf-8")
    for split in ("train", "validation"):
        m = s["split"] == split
        sp.create_dataset(split, data=np.array(list(s["track_id"][m]), dtype=object), dtype=str_dt)
        sp.create_dataset(f"{split}_groups", data=np.array(sorted({g for g in s["group"][m] if g}), dtype=object), dtype=str_dt)
    for k, v in {
        "model": clf.name, "model_kind": clf.kind, "model_config": clf.config, "inputs": clf.inputs,
        "input_shapes": {k: list(v) for k, v in clf.input_shapes.items()}, "labels": clf.labels,
        "feature_config": clf.feature_config, "segment_config": clf.segment_config, "history": history,
    }.items():
        f.attrs[k] = artifacts.canonical_json(v) if not isinstance(v, str) else v
    f.attrs["best_epoch"] = best_epoch
    f.attrs["device"] = device
