"""The training loop: :func:`fit_torch` (the epoch loop) and :func:`fit_sklearn`, with their helpers.

:func:`fit_torch` is the one place an epoch is run: shuffling, augmentation, the optimizer step
(AMP, per-layer L2), the all-reduce of the epoch's sums under DDP, validation, model selection,
early stopping and the per-epoch checkpoint (:mod:`genre_cli.formats.checkpoint`).

Hooks into the machinery of other modules (plain functions and classes):
:func:`genre_cli.models.base.for_training` (``channels_last`` layout) after building the model;
:func:`genre_cli.training.augment.apply` and :func:`genre_cli.training.augment.mixup` on every training batch;
:func:`genre_cli.training.schedule.set_lr` before every optimizer step; :meth:`genre_cli.training.averaging.WeightEMA.update`
after it; validation with the averaged weights (:meth:`~genre_cli.training.averaging.WeightEMA.applied`) and
:meth:`genre_cli.training.averaging.Selector.update` deciding which epoch's weights are kept.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli.errors import DeviceError, UsageError
from genre_cli.formats import checkpoint
from genre_cli.formats.features import Features
from genre_cli.inference import Classifier, aggregate_tracks, resolve_device
from genre_cli.testhooks import pause_point
from genre_cli.training import augment, schedule
from genre_cli.training.averaging import Selector, WeightEMA
from genre_cli.training.config import AMP_MODES, TrainConfig
from genre_cli.training.data import make_data, want_stream
from genre_cli.training.distributed import Dist
from genre_cli.ui import Bar

#: Train models with 2-D convolutions in the ``channels_last`` layout (``models.base.for_training``);
#: a switch for ``bench/train.py --layouts``, which measures both layouts in one run.
CHANNELS_LAST = True
#: Epochs in the running mean of ``select: smoothed``.
SMOOTH_WINDOW = 3


@dataclass
class TrainJob:
    """What to train: the features, the settings resolved for this model, where it goes."""

    feats: Features
    cfg: TrainConfig
    info: dict[str, Any]  #: the model's registry entry (:func:`genre_cli.models.model_info`)
    inputs: dict[str, str]  #: slot -> feature
    shapes: dict[str, tuple[int, ...]]  #: slot -> per-segment shape
    model_config: dict[str, Any]
    hp: dict[str, Any]  #: resolved hyper-parameters (:func:`genre_cli.training.config.resolve_hparams`)
    sources: dict[str, str]
    out: Path  #: the model artifact (its checkpoint sits beside it)
    resume_key: str
    show_progress: bool
    on_epoch: Callable | None
    notes: dict[str, str] = field(default_factory=dict)  #: why automatic settings resolved as they did
    dist: Dist = field(default_factory=Dist)
    warnings: list[str] = field(default_factory=list)
    checkpointed: int | None = None  #: epoch of the checkpoint on disk for this run (loaded or written), if any
    paper_inputs: dict[str, str] = field(default_factory=dict)  #: slot -> the paper's feature, where another fills it


def model_shapes(info: dict, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The input shapes the model is built with (sklearn pipelines see one flat vector)."""
    if info["kind"] == "sklearn":
        return {"vector": (sum(math.prod(s) for s in shapes.values()),)}
    return shapes


# ----------------------------------------------------------------------------- sklearn


def fit_sklearn(job: TrainJob, clf: Classifier, tr_rows: np.ndarray, va_rows: np.ndarray) -> dict[str, Any]:
    from genre_cli.models import build_model

    def load(rows):
        x = clf.prepare({name: job.feats.load(name, rows) for name in set(job.inputs.values())})
        return np.concatenate([x[s].reshape(len(rows), -1) for s in clf.inputs], axis=1)

    labels = job.feats.segments["label"]
    model = build_model(job.cfg.model, n_classes=len(clf.labels), input_shapes=model_shapes(job.info, clf.input_shapes), **job.model_config)
    x_tr, y_tr = load(tr_rows), labels[tr_rows]
    model.fit(x_tr, y_tr)
    clf.model = model
    rec: dict[str, Any] = {"epoch": 1, "train_accuracy": float(np.mean(model.predict(x_tr) == y_tr))}
    if len(va_rows):
        p = clf.proba_prepared(clf.prepare({name: job.feats.load(name, va_rows) for name in set(job.inputs.values())}))
        rec |= val_metrics(p, labels[va_rows], job.feats.segments["track_id"][va_rows])
    if job.on_epoch:
        job.on_epoch(rec)
    return {"history": [rec], "best_epoch": 1, "device": "cpu"}


def val_metrics(p: np.ndarray, y: np.ndarray, tracks: np.ndarray) -> dict[str, float]:
    """Segment loss/accuracy, track accuracy and balanced accuracy (mean of segment probabilities;
    balanced = mean recall over the classes present)."""
    keys, tp = aggregate_tracks(p, tracks)
    first = {k: i for i, k in reversed(list(enumerate(tracks)))}
    ty = np.array([y[first[k]] for k in keys])
    hit = tp.argmax(1) == ty
    return {
        "val_loss": float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-9))),
        "val_accuracy": float(np.mean(p.argmax(1) == y)),
        "val_track_accuracy": float(np.mean(hit)),
        "val_track_balanced_accuracy": float(np.mean([hit[ty == c].mean() for c in np.unique(ty)])),
    }


# ----------------------------------------------------------------------------- torch


def fit_torch(job: TrainJob, clf: Classifier, tr_rows: np.ndarray, va_rows: np.ndarray) -> dict[str, Any]:
    import torch

    from genre_cli.models import build_model
    from genre_cli.models.base import for_training

    hp, dist, feats = job.hp, job.dist, job.feats
    device = resolve_device(job.cfg.device)
    if dist.world > 1 and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    amp = resolve_amp(job.cfg.amp, device)
    dist.init(device)
    seed = int(hp["seed"])
    torch.manual_seed(seed)  # dropout and initialisation (all ranks: identical initial weights)
    gen = torch.Generator().manual_seed(seed)  # shuffling, SpecAugment and mixup partners
    np_rng = np.random.default_rng(seed)  # mixup's lambda
    model = build_model(job.cfg.model, n_classes=len(feats.labels), input_shapes=clf.input_shapes, **job.model_config).to(device)
    if CHANNELS_LAST:
        for_training(model)
    clf.model, clf.device = model, device
    opt, add_penalty = make_optimizer(model, hp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    labels = feats.segments["label"]
    cw = torch.from_numpy(class_weights(labels[tr_rows], len(feats.labels))).to(device) if hp["class_weights"] == "balanced" else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=cw, label_smoothing=float(hp["label_smoothing"]))
    stream = want_stream(job.cfg.stream, job.shapes, len(tr_rows))
    train_data = make_data(feats, clf, tr_rows, device, stream)
    val_data = make_data(feats, clf, va_rows, device, stream) if len(va_rows) else None
    va_tracks = feats.segments["track_id"][va_rows]

    bs = int(hp["batch_size"])
    per_rank = math.ceil(len(tr_rows) / dist.world)
    n_batches = math.ceil(per_rank / bs)
    # the loop's hooks: augmentation, lr schedule, weight averaging, selection of the kept weights
    aug = augment.Augment(
        specaugment=bool(hp["specaugment"]), time_shift=float(hp["time_shift"]), freq_shift=int(hp["freq_shift"]), eq=float(hp["eq"])
    )
    base_lrs = [g["lr"] for g in opt.param_groups]
    total_steps = n_batches * int(hp["epochs"])
    ema = WeightEMA(model, float(hp["ema"])) if hp["ema"] else None
    selector = Selector(hp["select"] if len(va_rows) else "last", window=SMOOTH_WINDOW)

    state: dict[str, Any] = {"history": [], "best_state": None}
    ckpt = checkpoint.path_for(job.out)
    start = 1
    resumed_from, warnings = None, []
    if job.cfg.resume and ckpt.exists():
        loaded = checkpoint.load(ckpt, job.resume_key, model, opt, scaler, gen, np_rng, selector, ema)
        if loaded is not None:
            state, start = loaded, loaded["epoch"] + 1
            resumed_from = job.checkpointed = loaded["epoch"]
        else:
            warnings.append(f"{ckpt} was written with other settings: not resumed, starting over")
    train_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16))
        if amp != "off"
        else contextlib.nullcontext
    )
    averaged = (lambda: ema.applied(model)) if ema is not None else contextlib.nullcontext
    bar = Bar(n_batches * max(0, hp["epochs"] - start + 1), "train", enabled=job.show_progress and dist.main, kind="stats")
    try:
        with deterministic(device):
            for epoch in range(start, hp["epochs"] + 1):
                t0 = time.perf_counter()
                model.train()
                order = train_data.order(gen)
                if dist.world > 1:  # pad by wrapping so every rank runs the same number of batches
                    pad = per_rank * dist.world - len(order)
                    order = torch.cat([order, order[:pad]])[dist.rank * per_rank : (dist.rank + 1) * per_rank]
                sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
                bar.update(description=f"epoch {epoch}/{hp['epochs']}")
                for i, (xb, yb) in enumerate(train_data.batches(order, bs)):
                    if len(yb) < 2 and len(order) > 1:
                        bar.update(advance=1)
                        continue  # batch-norm needs two samples
                    xb = {s: v.to(device, non_blocking=True) for s, v in xb.items()}
                    yb = yb.to(device, non_blocking=True)
                    xb = augment.apply(xb, clf.inputs, aug, gen)
                    lam, partner = 1.0, None
                    if hp["mixup"] > 0:
                        xb, lam, partner = augment.mixup(xb, yb, float(hp["mixup"]), gen, np_rng)
                    step = (epoch - 1) * n_batches + i
                    schedule.set_lr(opt, base_lrs, schedule.lr_factor(hp["schedule"], step, total_steps, warmup=float(hp["warmup"])))
                    opt.zero_grad(set_to_none=True)
                    with autocast():
                        logits = train_model(**xb)
                        loss = loss_fn(logits.float(), yb)
                        if partner is not None:
                            loss = lam * loss + (1 - lam) * loss_fn(logits.float(), yb[partner])
                    total = loss + model.l2_penalty() if add_penalty else loss
                    scaler.scale(total).backward()
                    scaler.step(opt)
                    scaler.update()
                    if ema is not None:
                        ema.update(model)
                    sums += torch.stack(
                        [
                            loss.detach().double() * len(yb),
                            (logits.argmax(1) == yb).sum().double(),
                            torch.tensor(float(len(yb)), dtype=torch.float64, device=device),
                        ]
                    )
                    bar.update(advance=1)
                dist.all_reduce(sums)
                loss_sum, correct, count = (float(v) for v in sums.cpu())
                seconds = time.perf_counter() - t0
                rec: dict[str, Any] = {
                    "epoch": epoch,
                    "loss": loss_sum / max(count, 1),
                    "train_accuracy": correct / max(count, 1),
                    "seconds": round(seconds, 4),
                    "samples_per_s": round(count / max(seconds, 1e-9), 1),
                    "lr": float(opt.param_groups[0]["lr"]),
                }
                if val_data is not None:
                    with averaged():
                        p = predict_proba(model, val_data, device, autocast)
                    rec |= val_metrics(p, labels[va_rows], va_tracks)
                    keep = selector.update(epoch, rec["val_track_balanced_accuracy"], rec["val_loss"])
                else:
                    keep = selector.update(epoch, 0.0, rec["loss"])
                state["history"].append(rec)
                if keep:
                    with averaged():
                        state["best_state"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                if dist.main:
                    checkpoint.save(ckpt, job.resume_key, epoch, state, model, opt, scaler, gen, np_rng, selector, ema)
                    job.checkpointed = epoch
                va = f" val {rec['val_track_balanced_accuracy']:.3f}" if "val_track_balanced_accuracy" in rec else ""
                bar.update(stats=f"loss {rec['loss']:.3f} acc {rec['train_accuracy']:.3f}{va} {rec['samples_per_s']:.0f}/s")
                if job.on_epoch and dist.main:
                    job.on_epoch(rec)
                pause_point("train:epoch")  # test-only (genre_cli.testhooks); inert unless GENRE_TEST_PAUSE_AT is set
                if hp["patience"] and selector.stale >= hp["patience"]:
                    break
    finally:
        bar.close()
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    return {
        "history": state["history"],
        "best_epoch": selector.best_epoch,
        "device": str(device),
        "amp": amp,
        "resumed_from": resumed_from,
        "stream": stream,
        "world_size": dist.world,
        "warnings": warnings,
    }


def predict_proba(model, data, device, autocast, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of ``data`` in its stored order (eval mode, no RNG used)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode(), autocast():
        for xb, _ in data.batches(torch.arange(data.n), batch_size):
            xb = {s: v.to(device, non_blocking=True) for s, v in xb.items()}
            out.append(torch.softmax(model(**xb).float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


# ----------------------------------------------------------------------------- torch helpers


def resolve_amp(spec: str, device) -> str:
    """``auto`` → ``bf16`` on CUDA with bf16 support, ``fp16`` on other CUDA, ``off`` on CPU.

    Raises
    ------
    UsageError
        Unknown mode, or bf16/fp16 asked for on CPU.
    DeviceError
        ``bf16`` asked for on a GPU without bf16 support.
    """
    import torch

    spec = (spec or "auto").lower()
    if spec not in AMP_MODES:
        raise UsageError(f"unknown --amp {spec!r}; use {', '.join(AMP_MODES)}")
    if device.type != "cuda":
        if spec in ("bf16", "fp16"):
            raise UsageError(f"--amp {spec} needs a CUDA device (training on {device})", hint="use --amp off or auto on CPU")
        return "off"
    if spec == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if spec == "bf16" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bfloat16", hint="use --amp fp16")
    return spec


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (n_classes * count_c)`` (0 for classes absent from ``y``)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.zeros(n_classes)
    present = counts > 0
    w[present] = len(y) / (present.sum() * counts[present])
    return w.astype(np.float32)


def make_optimizer(model, hp: dict[str, Any]):
    """The optimizer and whether ``model.l2_penalty()`` must be added to the loss (AdamW + L2)."""
    import torch

    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD}[hp["optimizer"]]
    wd, l2 = float(hp["weight_decay"]), getattr(model, "l2_penalties", {})
    add_penalty = False
    if l2 and hp["optimizer"] != "adamw":
        groups = model.param_groups_l2(wd)
    elif l2:  # AdamW's decay is decoupled, not L2: penalised weights get the exact penalty in the loss
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if n in l2], "weight_decay": 0.0, "names": [n for n, _ in named if n in l2]},
            {"params": [p for n, p in named if n not in l2], "weight_decay": wd, "names": [n for n, _ in named if n not in l2]},
        ]
        groups = [g for g in groups if g["params"]]
        add_penalty = True
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": wd}]
    kwargs = {"momentum": 0.9} if hp["optimizer"] == "sgd" else {}
    return cls(groups, lr=float(hp["lr"]), **kwargs), add_penalty


@contextlib.contextmanager
def deterministic(device) -> Iterator[None]:
    """Deterministic kernels on CPU (same seed → same weights); cuDNN autotuning on CUDA."""
    import torch

    if device.type == "cuda":
        old = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = old
        return
    import torch.utils.deterministic as tud

    old_det, old_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    old_fill = tud.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    # deterministic mode also NaN-fills every new tensor (a debugging aid): ~10 % of a CPU step
    tud.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        tud.fill_uninitialized_memory = old_fill
