"""``train`` stage: fit a registered model on the train split, select on validation, save.

Hyper-parameters
----------------
Every field of :class:`TrainConfig` left as ``None`` takes the model's paper value when the
registry's ``train`` metadata states one (e.g. seed 004: Adadelta, lr 1.0, batch 50), otherwise
our default (:data:`DEFAULTS`); explicit values override both. A paper ``lr`` is only used with the
paper's optimizer (Adadelta's lr 1.0 would wreck Adam), otherwise the optimizer's usual lr
(:data:`DEFAULT_LR`). The *resolved* values are part of the fingerprint and stored in the
artifact (``train`` attribute, and ``train_sources``: ``flag`` / ``paper`` / ``default``).

Weight decay and per-layer L2
-----------------------------
Models that declare Keras-style per-layer L2 (``l2_penalties``: ``dupconv``, ``rescat``, ``mlp``)
get it exactly: with Adam, Adadelta and SGD through ``param_groups_l2`` (torch's coupled weight
decay ``2*lambda`` per group is the gradient of ``lambda*w**2``); with AdamW — whose decay is
decoupled and so *not* an L2 penalty — the penalised parameters get no decay and
``model.l2_penalty()`` is added to the loss instead. ``weight_decay`` applies to the remaining
parameters; its default is 0 for models that declare L2 (the papers regularise only those
layers) and 1e-4 otherwise.

Execution (not part of the fingerprint): ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``;
CUDA asked without one is a :class:`DeviceError`), ``amp`` (``auto``: bf16 when the GPU supports
it, else fp16 with a ``GradScaler``; always off on CPU), ``stream`` (read batches from HDF5 instead
of holding the split in memory; ``None``: automatic above :func:`stream_threshold` bytes) and
``resume``. Under ``torchrun`` (``WORLD_SIZE`` > 1) training is data-parallel (DDP: NCCL on CUDA,
gloo on CPU); only rank 0 writes the checkpoint and the artifact.

Checkpoints: after every epoch rank 0 atomically writes ``<out>.ckpt.h5`` (weights, optimizer
state as datasets + JSON, epoch, history, best weights, numpy + torch RNG states; no pickle).
``resume=True`` continues from it when its resume key (the fingerprint without ``epochs`` and
``patience``) matches; it is removed after the model artifact is written.

Layout of a model artifact (stage ``train``)::

    /weights/...              torch state-dict tensors as datasets, or the sklearn model's safe form
    /norm/<feature>/mean,std  normalisation statistics (train split) for each input feature
    /splits/train, /splits/validation, /splits/train_groups, /splits/validation_groups
                              track ids (and groups) the model saw, for evaluate's leakage guard
    attrs: model, model_kind, model_config, inputs (slot -> feature), input_shapes, labels,
           feature_config, segment_config, history (per-epoch JSON), best_epoch, epochs_run,
           train (resolved hyper-parameters), train_sources, device, amp, world_size, stream,
           wall_seconds, features_fingerprint
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import DeviceError, InputError, UsageError
from genre_cli.featurize import Features, load_features
from genre_cli.inference import Classifier, aggregate_tracks, resolve_device, resolve_inputs
from genre_cli.stage import StageResult, default_output, execute, planned_fingerprint, slugify

OPTIMIZERS = ("adamw", "adam", "adadelta", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "off")
CLASS_WEIGHTS = ("none", "balanced")
#: Our defaults for hyper-parameters the paper does not give.
DEFAULTS: dict[str, Any] = {"epochs": 30, "batch_size": 32, "optimizer": "adamw", "patience": 10}
#: Default learning rate per optimizer (Adadelta's is Zeiler's 1.0, as Keras and seed 004).
DEFAULT_LR = {"adamw": 1e-3, "adam": 1e-3, "adadelta": 1.0, "sgd": 1e-2}
DEFAULT_WEIGHT_DECAY = 1e-4
#: Hyper-parameters the registry's ``train`` metadata may set.
PAPER_KEYS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience")
#: Fields that change how, not what, is trained: left out of the fingerprint.
EXECUTION_FIELDS = ("device", "amp", "stream", "resume")
#: Left out of the resume key: a checkpoint after epoch k does not depend on them.
RESUME_FREE = ("epochs", "patience")
SPEC_MASKS, SPEC_MAX_FRACTION = 2, 0.15  # SpecAugment: 2 time + 2 frequency masks, each <= 15 %


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``None`` = the model's paper value, else our default.

    Attributes
    ----------
    class_weights : {"none", "balanced"}
        ``balanced`` weighs the loss by ``n / (n_classes * count_c)`` (sklearn's rule).
    label_smoothing : float in [0, 1)
    specaugment : bool
        Random time and frequency masks on ``spectrogram`` inputs, training batches only.
    mixup : float >= 0
        Mixup ``alpha`` (0 = off): ``lam ~ Beta(alpha, alpha)`` mixes inputs and losses.
    stream : bool or None
        Stream batches from HDF5 (``None``: when the train split exceeds :func:`stream_threshold`).
    """

    model: str = "cnn6"
    model_config: dict[str, Any] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)  # slot -> feature override
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    patience: int | None = None
    class_weights: str = "none"
    label_smoothing: float = 0.0
    specaugment: bool = False
    mixup: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    stream: bool | None = None
    resume: bool = False

    def to_params(self) -> dict[str, Any]:
        """The unresolved settings without execution fields (see :func:`resolve_hparams`)."""
        d = asdict(self)
        for k in EXECUTION_FIELDS:
            d.pop(k)
        return d


def resolve_hparams(cfg: TrainConfig, info: dict[str, Any], *, declares_l2: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolved hyper-parameters and where each came from (``flag`` | ``paper`` | ``default``).

    sklearn models only use ``seed``. Raises :class:`UsageError` for invalid values.
    """
    if info["kind"] == "sklearn":
        return {"seed": cfg.seed}, {"seed": "flag"}
    paper = {k: v for k, v in (info.get("train") or {}).items() if k in PAPER_KEYS}
    out: dict[str, Any] = {}
    src: dict[str, str] = {}

    def pick(key: str, default: Any) -> None:
        given = getattr(cfg, key)
        if given is not None:
            out[key], src[key] = given, "flag"
        elif key in paper:
            out[key], src[key] = paper[key], "paper"
        else:
            out[key], src[key] = default, "default"

    for key in ("epochs", "batch_size", "optimizer", "patience"):
        pick(key, DEFAULTS[key])
    if out["optimizer"] not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {out['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    if cfg.lr is None and "lr" in paper and paper.get("optimizer", out["optimizer"]) != out["optimizer"]:
        out["lr"], src["lr"] = DEFAULT_LR[out["optimizer"]], "default"  # the paper's lr belongs to its optimizer
    else:
        pick("lr", DEFAULT_LR[out["optimizer"]])
    pick("weight_decay", 0.0 if declares_l2 else DEFAULT_WEIGHT_DECAY)
    for key in ("class_weights", "label_smoothing", "specaugment", "mixup", "seed"):
        out[key], src[key] = getattr(cfg, key), "flag"
    _check_hparams(out)
    return out, src


def _check_hparams(hp: dict[str, Any]) -> None:
    def bad(msg: str) -> UsageError:
        return UsageError(msg)

    for key in ("epochs", "batch_size", "patience"):
        v = hp[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise bad(f"{key.replace('_', '-')} must be an integer >= 1, got {v!r}")
    if not isinstance(hp["lr"], (int, float)) or not hp["lr"] > 0:
        raise bad(f"lr must be > 0, got {hp['lr']!r}")
    if not isinstance(hp["weight_decay"], (int, float)) or hp["weight_decay"] < 0:
        raise bad(f"weight-decay must be >= 0, got {hp['weight_decay']!r}")
    if hp["class_weights"] not in CLASS_WEIGHTS:
        raise bad(f"class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {hp['class_weights']!r}")
    if not 0.0 <= float(hp["label_smoothing"]) < 1.0:
        raise bad(f"label-smoothing must be in [0, 1), got {hp['label_smoothing']!r}")
    if float(hp["mixup"]) < 0:
        raise bad(f"mixup alpha must be >= 0, got {hp['mixup']!r}")


def stream_threshold() -> int:
    """Bytes of training data above which batches are streamed from HDF5 (``--stream`` auto).

    ``$GENRE_STREAM_BYTES`` if set, else a quarter of physical memory (8 GiB if unknown).
    """
    env = os.environ.get("GENRE_STREAM_BYTES")
    if env:
        return int(float(env))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def checkpoint_path(out: str | Path) -> Path:
    """The sidecar checkpoint of model artifact ``out``: ``<out>.ckpt.h5``."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt.h5")


# ----------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    """Data-parallel context from torchrun's environment (world 1 = plain run)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else cls()

    def init(self, device) -> None:
        """Join the process group (NCCL on CUDA, gloo on CPU) unless already joined."""
        if self.world == 1:
            return
        import torch.distributed as td

        if not td.is_initialized():
            td.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as td

            td.destroy_process_group()
            self.owns_group = False

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as td

            td.barrier()


# ----------------------------------------------------------------------------- the stage


def run(
    features_path: str | Path,
    *,
    config: TrainConfig,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> StageResult:
    """Train ``config.model`` on a features artifact and write the model artifact.

    Parameters
    ----------
    on_epoch : callable(record) or None
        Called on rank 0 after each epoch (after its checkpoint is written) with the history
        record (``epoch``, ``loss``, ``train_accuracy``, ``val_*``, ``seconds``, ``samples_per_s``).

    Returns
    -------
    StageResult
        ``summary``: ``model``, ``best_epoch``, ``val_track_accuracy``, ``epochs_run``,
        ``seconds``, ``device``, ``amp``, ``n_train``/``n_val`` segments, ``train`` (resolved
        hyper-parameters), ``resumed_from`` (epoch or None).

    Raises
    ------
    UsageError
        Unknown model / optimizer, invalid values, features that cannot fill the model's inputs.
    DeviceError
        CUDA asked for but not available (never a silent CPU fallback).
    """
    from genre_cli.models import build_model, model_info

    info = model_info(config.model)  # unknown name → UsageError with the valid names
    feats = load_features(features_path)
    suggested = {slot: name for slot, name in (info.get("features") or {}).items() if name in feats.names}
    inputs = resolve_inputs(config.model, tuple(info["inputs"]), feats.names, prefer=suggested | dict(config.features))
    shapes = {slot: tuple(feats.shapes[name]) for slot, name in inputs.items()}
    if len(feats.labels) < 2:
        raise InputError(f"{feats.path}: needs at least two labels, has {feats.labels}")
    model_config = dict(config.model_config)
    if info["kind"] == "sklearn" and "random_state" in info["config"] and "random_state" not in model_config:
        model_config["random_state"] = config.seed
    probe = build_model(config.model, n_classes=len(feats.labels), input_shapes=_model_shapes(info, shapes), **model_config)
    declares_l2 = bool(getattr(probe, "l2_penalties", None))
    del probe
    hp, sources = resolve_hparams(config, info, declares_l2=declares_l2)
    params = {"model": config.model, "model_config": model_config, "inputs": inputs, "train": hp}
    upstream = {"features": (feats.meta.fingerprint, feats.path)}
    fp = planned_fingerprint("train", params, upstream)
    out_path = Path(out) if out else default_output(workdir, feats.dataset, f"model-{slugify(config.model)}-s{config.seed}", fp)
    resume_key = planned_fingerprint("train", params | {"train": {k: v for k, v in hp.items() if k not in RESUME_FREE}}, upstream)
    job = _Job(feats, config, info, inputs, shapes, model_config, hp, sources, out_path, resume_key, show_progress, on_epoch)
    if info["kind"] == "sklearn":
        ignored = [k for k in (*PAPER_KEYS, "amp", "stream") if getattr(config, k) not in (None, "auto")]
        ignored += [k for k in ("specaugment", "mixup", "label_smoothing") if getattr(config, k)]
        ignored += ["class_weights"] if config.class_weights != "none" else []
        if ignored:
            job.warnings.append(f"{config.model} is an sklearn model: {', '.join(ignored)} ignored")

    dist = Dist.from_env()
    if dist.world > 1 and info["kind"] == "torch":
        return _run_distributed(job, dist, params, upstream, fp, force=force, dry_run=dry_run)
    if not dist.main:  # sklearn under torchrun: rank 0 alone fits
        return StageResult("train", out_path, fp, "skipped", {"rank": dist.rank})
    result = execute(stage="train", params=params, upstream=upstream, build=job.build, out=out_path, workdir=workdir,
                     dataset=feats.dataset, slug="", force=force, dry_run=dry_run)
    if result.ran:
        checkpoint_path(out_path).unlink(missing_ok=True)  # the model is in place: the checkpoint is spent
    return result


def _run_distributed(job: _Job, dist: Dist, params, upstream, fp: str, *, force: bool, dry_run: bool) -> StageResult:
    if not force and artifacts.is_up_to_date(job.out, fp):
        return StageResult("train", job.out, fp, "skipped")
    if dry_run:
        return StageResult("train", job.out, fp, "would run")
    job.dist = dist
    try:
        if dist.main:
            result = execute(stage="train", params=params, upstream=upstream, build=job.build, out=job.out, workdir=None,
                             dataset=job.feats.dataset, slug="", force=True)
            checkpoint_path(job.out).unlink(missing_ok=True)
            return result
        summary = job.build(None)
        return StageResult("train", job.out, fp, "ran", summary | {"rank": dist.rank})
    finally:
        dist.close()


def _model_shapes(info: dict, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    if info["kind"] == "sklearn":  # sklearn pipelines see one flat vector
        return {"vector": (sum(math.prod(s) for s in shapes.values()),)}
    return shapes


def _split_rows(feats: Features, split: str) -> np.ndarray:
    return np.flatnonzero(feats.segments["split"] == split)


@dataclass
class _Job:
    feats: Features
    cfg: TrainConfig
    info: dict[str, Any]
    inputs: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    model_config: dict[str, Any]
    hp: dict[str, Any]
    sources: dict[str, str]
    out: Path
    resume_key: str
    show_progress: bool
    on_epoch: Callable | None
    dist: Dist = field(default_factory=Dist)
    warnings: list[str] = field(default_factory=list)

    def build(self, f: h5py.File | None) -> dict[str, Any]:
        """Train, then (rank 0) write the model into ``f`` and drop the checkpoint."""
        feats = self.feats
        tr_rows, va_rows = _split_rows(feats, "train"), _split_rows(feats, "validation")
        if len(tr_rows) == 0:
            raise InputError(f"{feats.path}: no segments in the train split", hint="check the index's splits with `genre info`")
        labels = feats.segments["label"]
        if np.any(labels[tr_rows] < 0):
            raise InputError(f"{feats.path}: some training segments have no label")
        va_rows = va_rows[labels[va_rows] >= 0]
        seen = np.unique(labels[tr_rows])
        if len(seen) < 2:
            raise InputError(f"{feats.path}: the train split has segments of only one label ({feats.labels[int(seen[0])]}); "
                             "a classifier needs at least two", hint="check the index's splits with `genre info`")
        absent = [lab for i, lab in enumerate(feats.labels) if i not in set(seen.tolist())]
        if absent:
            them = "it" if len(absent) == 1 else "them"
            self.warnings.append(f"the train split has no segment of {', '.join(absent)}: {self.cfg.model} cannot learn {them}"
                                 + (f" and gives {them} probability 0" if self.info["kind"] == "sklearn" else ""))
        norm = {name: feats.norm[name] for name in self.inputs.values() if name in feats.norm}
        clf = Classifier(self.cfg.model, self.info["kind"], feats.labels, self.inputs, self.shapes, norm,
                         feats.feature_config, feats.segment_config, None, config=self.model_config)
        t0 = time.perf_counter()
        if self.info["kind"] == "sklearn":
            fit = _fit_sklearn(self, clf, tr_rows, va_rows)
        else:
            fit = _fit_torch(self, clf, tr_rows, va_rows)
        seconds = time.perf_counter() - t0
        best = next((r for r in fit["history"] if r["epoch"] == fit["best_epoch"]), {})
        summary = {
            "model": self.cfg.model, "best_epoch": fit["best_epoch"], "epochs_run": len(fit["history"]),
            "seconds": round(seconds, 2), "device": fit["device"], "amp": fit.get("amp", "off"),
            "n_train": int(len(tr_rows)), "n_val": int(len(va_rows)), "val_track_accuracy": best.get("val_track_accuracy"),
            "inputs": self.inputs, "train": self.hp, "resumed_from": fit.get("resumed_from"), "stream": fit.get("stream", False),
            "warnings": self.warnings + fit.get("warnings", []),
        }
        if f is not None:
            _write_model(f, clf, self, fit, seconds)
        return summary


# ----------------------------------------------------------------------------- sklearn


def _fit_sklearn(job: _Job, clf: Classifier, tr_rows: np.ndarray, va_rows: np.ndarray) -> dict[str, Any]:
    from genre_cli.models import build_model

    def load(rows):
        x = clf.prepare({name: job.feats.load(name, rows) for name in set(job.inputs.values())})
        return np.concatenate([x[s].reshape(len(rows), -1) for s in clf.inputs], axis=1)

    labels = job.feats.segments["label"]
    model = build_model(job.cfg.model, n_classes=len(clf.labels), input_shapes=_model_shapes(job.info, clf.input_shapes), **job.model_config)
    x_tr, y_tr = load(tr_rows), labels[tr_rows]
    model.fit(x_tr, y_tr)
    clf.model = model
    rec: dict[str, Any] = {"epoch": 1, "train_accuracy": float(np.mean(model.predict(x_tr) == y_tr))}
    if len(va_rows):
        p = clf.proba_prepared(clf.prepare({name: job.feats.load(name, va_rows) for name in set(job.inputs.values())}))
        rec |= _val_metrics(p, labels[va_rows], job.feats.segments["track_id"][va_rows])
    if job.on_epoch:
        job.on_epoch(rec)
    return {"history": [rec], "best_epoch": 1, "device": "cpu"}


def _val_metrics(p: np.ndarray, y: np.ndarray, tracks: np.ndarray) -> dict[str, float]:
    """Segment loss/accuracy and track accuracy (mean of segment probabilities)."""
    keys, tp = aggregate_tracks(p, tracks)
    first = {k: i for i, k in reversed(list(enumerate(tracks)))}
    ty = np.array([y[first[k]] for k in keys])
    return {
        "val_loss": float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-9))),
        "val_accuracy": float(np.mean(p.argmax(1) == y)),
        "val_track_accuracy": float(np.mean(tp.argmax(1) == ty)),
    }


# ----------------------------------------------------------------------------- torch data


class _MemoryData:
    """A split held as tensors: on the GPU when it fits, else in pinned host memory (CUDA)."""

    stream = False

    def __init__(self, job: _Job, clf: Classifier, rows: np.ndarray, device):
        import torch

        x = clf.prepare({name: job.feats.load(name, rows) for name in set(job.inputs.values())})
        self.x = {s: torch.from_numpy(np.ascontiguousarray(v)) for s, v in x.items()}
        self.y = torch.from_numpy(job.feats.segments["label"][rows].astype(np.int64))
        self.n, self.device = len(rows), device
        if device.type == "cuda":
            nbytes = sum(v.numel() * v.element_size() for v in self.x.values())
            free, _ = torch.cuda.mem_get_info(device)
            place = (lambda t: t.to(device)) if nbytes < free // 4 else (lambda t: t.pin_memory())
            self.x, self.y = {s: place(v) for s, v in self.x.items()}, place(self.y)

    def order(self, gen) -> Any:
        import torch

        return torch.randperm(self.n, generator=gen)

    def batches(self, order, batch_size: int) -> Iterator[tuple[dict, Any]]:
        on_gpu, pin = self.y.device.type == "cuda", self.device.type == "cuda"
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            if on_gpu:  # resident on the GPU: gather there
                yield {s: v[idx.to(self.y.device)] for s, v in self.x.items()}, self.y[idx.to(self.y.device)]
            elif pin:  # gathered rows are pageable again: pin them so the copy can overlap
                yield {s: v[idx].pin_memory() for s, v in self.x.items()}, self.y[idx].pin_memory()
            else:
                yield {s: v[idx] for s, v in self.x.items()}, self.y[idx]


class _StreamData:
    """A split read from HDF5 window by window (a background thread reads the next window).

    Shuffling keeps locality: the order permutes blocks of :data:`BLOCK` consecutive rows (the
    features file's chunk size) and then shuffles within windows of ~16 batches.
    """

    stream = True
    BLOCK = 64

    def __init__(self, job: _Job, clf: Classifier, rows: np.ndarray, device):
        self.feats, self.clf, self.rows, self.n, self.device = job.feats, clf, rows, len(rows), device
        self.labels = job.feats.segments["label"][rows].astype(np.int64)
        self.names = sorted(set(job.inputs.values()))
        self.window = 4096

    def order(self, gen) -> Any:
        import torch

        blocks = torch.arange(self.n).split(self.BLOCK)
        perm = torch.randperm(len(blocks), generator=gen)
        order = torch.cat([blocks[i] for i in perm]) if len(blocks) else torch.zeros(0, dtype=torch.long)
        parts = [w[torch.randperm(len(w), generator=gen)] for w in order.split(self.window)]
        return torch.cat(parts) if parts else order

    def _read(self, pos: np.ndarray) -> tuple[dict, Any]:
        import torch

        srt = np.sort(pos)
        with h5py.File(self.feats.path, "r") as f:
            raw = {name: f["features"][name][self.rows[srt]].astype(np.float32, copy=False) for name in self.names}
        back = np.searchsorted(srt, pos)
        x = self.clf.prepare({k: v[back] for k, v in raw.items()})
        xt = {s: torch.from_numpy(np.ascontiguousarray(v)) for s, v in x.items()}
        yt = torch.from_numpy(self.labels[pos])
        if self.device.type == "cuda":
            xt, yt = {s: v.pin_memory() for s, v in xt.items()}, yt.pin_memory()
        return xt, yt

    def batches(self, order, batch_size: int) -> Iterator[tuple[dict, Any]]:
        from concurrent.futures import ThreadPoolExecutor

        order = np.asarray(order)
        step = max(batch_size, self.window // batch_size * batch_size)
        windows = [order[i : i + step] for i in range(0, len(order), step)]
        with ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(self._read, windows[0]) if windows else None
            for k in range(len(windows)):
                x, y = nxt.result()
                nxt = pool.submit(self._read, windows[k + 1]) if k + 1 < len(windows) else None
                for i in range(0, len(y), batch_size):
                    yield {s: v[i : i + batch_size] for s, v in x.items()}, y[i : i + batch_size]


def _make_data(job: _Job, clf: Classifier, rows: np.ndarray, device, stream: bool):
    return (_StreamData if stream else _MemoryData)(job, clf, rows, device)


def _want_stream(job: _Job, n_rows: int) -> bool:
    if job.cfg.stream is not None:
        return bool(job.cfg.stream)
    nbytes = n_rows * sum(4 * math.prod(s) for s in job.shapes.values())
    return nbytes > stream_threshold()


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


def spec_augment(x, gen, *, n_masks: int = SPEC_MASKS, max_fraction: float = SPEC_MAX_FRACTION):
    """Zero ``n_masks`` random time spans and frequency bands per sample of ``(batch, frames, bins)``.

    Inputs are normalised, so 0 is the training mean. Masks are drawn on the CPU from ``gen``
    (reproducible for any device) and applied where ``x`` lives.
    """
    import torch

    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool)
    for axis, size in ((1, t), (2, f)):
        wmax = max(1, int(size * max_fraction))
        for _ in range(n_masks):
            w = torch.randint(0, wmax + 1, (b,), generator=gen)
            start = (torch.rand(b, generator=gen) * (size - w + 1)).long()
            ar = torch.arange(size)
            band = (ar[None, :] >= start[:, None]) & (ar[None, :] < (start + w)[:, None])
            keep &= ~(band[:, :, None] if axis == 1 else band[:, None, :])
    return x * keep.to(x.device, non_blocking=True)


def _optimizer(model, hp: dict[str, Any]):
    """The optimizer and whether ``model.l2_penalty()`` must be added to the loss (AdamW + L2)."""
    import torch

    cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta, "sgd": torch.optim.SGD}[hp["optimizer"]]
    wd, l2 = float(hp["weight_decay"]), getattr(model, "l2_penalties", {})
    add_penalty = False
    if l2 and hp["optimizer"] != "adamw":
        groups = model.param_groups_l2(wd)
    elif l2:  # AdamW's decay is decoupled, not L2: penalised weights get the exact penalty in the loss
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in named if n in l2], "weight_decay": 0.0, "names": [n for n, _ in named if n in l2]},
                  {"params": [p for n, p in named if n not in l2], "weight_decay": wd, "names": [n for n, _ in named if n not in l2]}]
        groups = [g for g in groups if g["params"]]
        add_penalty = True
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": wd}]
    kwargs = {"momentum": 0.9} if hp["optimizer"] == "sgd" else {}
    return cls(groups, lr=float(hp["lr"]), **kwargs), add_penalty


@contextlib.contextmanager
def _deterministic(device) -> Iterator[None]:
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
    old_det, old_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


class _Progress:
    """One rich bar on stderr over all batches of the run: epoch, loss, accuracies, samples/s, ETA."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if not enabled or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[stats]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task("train", total=total, stats="")
        self.bar.start()

    def update(self, advance: int = 0, **kw) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=advance, **kw)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# ----------------------------------------------------------------------------- torch training


def _fit_torch(job: _Job, clf: Classifier, tr_rows: np.ndarray, va_rows: np.ndarray) -> dict[str, Any]:
    import torch

    from genre_cli.models import build_model

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
    clf.model, clf.device = model, device
    opt, add_penalty = _optimizer(model, hp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    labels = feats.segments["label"]
    cw = torch.from_numpy(class_weights(labels[tr_rows], len(feats.labels))).to(device) if hp["class_weights"] == "balanced" else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=cw, label_smoothing=float(hp["label_smoothing"]))
    stream = _want_stream(job, len(tr_rows))
    train_data = _make_data(job, clf, tr_rows, device, stream)
    val_data = _make_data(job, clf, va_rows, device, stream) if len(va_rows) else None
    va_tracks = feats.segments["track_id"][va_rows]

    state = {"history": [], "best_epoch": 0, "best_score": [-1.0, float("inf")], "stale": 0, "best_state": None}
    ckpt = checkpoint_path(job.out)
    start = 1
    resumed_from, warnings = None, []
    if job.cfg.resume and ckpt.exists():
        loaded = _load_checkpoint(ckpt, job.resume_key, model, opt, scaler, gen, np_rng)
        if loaded is not None:
            state, start = loaded, loaded["epoch"] + 1
            resumed_from = loaded["epoch"]
        else:
            warnings.append(f"{ckpt} was written with other settings: not resumed, starting over")
    train_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)) if amp != "off" else contextlib.nullcontext
    bs = int(hp["batch_size"])
    per_rank = math.ceil(len(tr_rows) / dist.world)
    n_batches = math.ceil(per_rank / bs)
    bar = _Progress(job.show_progress and dist.main, n_batches * max(0, hp["epochs"] - start + 1))
    spec_slots = [s for s in clf.inputs if s == "spectrogram"] if hp["specaugment"] else []
    try:
        with _deterministic(device):
            for epoch in range(start, hp["epochs"] + 1):
                t0 = time.perf_counter()
                model.train()
                order = train_data.order(gen)
                if dist.world > 1:  # pad by wrapping so every rank runs the same number of batches
                    pad = per_rank * dist.world - len(order)
                    order = torch.cat([order, order[:pad]])[dist.rank * per_rank : (dist.rank + 1) * per_rank]
                sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss*n, correct, n
                bar.update(description=f"epoch {epoch}/{hp['epochs']}")
                for xb, yb in train_data.batches(order, bs):
                    if len(yb) < 2 and len(order) > 1:
                        bar.update(advance=1)
                        continue  # batch-norm needs two samples
                    xb = {s: v.to(device, non_blocking=True) for s, v in xb.items()}
                    yb = yb.to(device, non_blocking=True)
                    for s in spec_slots:
                        xb[s] = spec_augment(xb[s], gen)
                    lam, partner = 1.0, None
                    if hp["mixup"] > 0:
                        lam = float(np_rng.beta(hp["mixup"], hp["mixup"]))
                        partner = torch.randperm(len(yb), generator=gen).to(device)
                        xb = {s: lam * v + (1 - lam) * v[partner] for s, v in xb.items()}
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
                    sums += torch.stack([loss.detach().double() * len(yb), (logits.argmax(1) == yb).sum().double(),
                                         torch.tensor(float(len(yb)), dtype=torch.float64, device=device)])
                    bar.update(advance=1)
                if dist.world > 1:
                    import torch.distributed as td

                    td.all_reduce(sums)
                loss_sum, correct, count = (float(v) for v in sums.cpu())
                seconds = time.perf_counter() - t0
                rec: dict[str, Any] = {"epoch": epoch, "loss": loss_sum / max(count, 1), "train_accuracy": correct / max(count, 1),
                                       "seconds": round(seconds, 4), "samples_per_s": round(count / max(seconds, 1e-9), 1),
                                       "lr": float(opt.param_groups[0]["lr"])}
                if val_data is not None:
                    p = _predict(model, val_data, device, autocast)
                    rec |= _val_metrics(p, labels[va_rows], va_tracks)
                    score = [rec["val_track_accuracy"], rec["val_loss"]]
                    b = state["best_score"]
                    improved = score[0] > b[0] or (score[0] == b[0] and score[1] < b[1])
                else:
                    score, improved = [0.0, rec["loss"]], True
                state["history"].append(rec)
                if improved:
                    state.update(best_score=score, best_epoch=epoch, stale=0,
                                 best_state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
                else:
                    state["stale"] += 1
                if dist.main:
                    _save_checkpoint(ckpt, job.resume_key, epoch, state, model, opt, scaler, gen, np_rng)
                va = f" val {rec['val_track_accuracy']:.3f}" if "val_track_accuracy" in rec else ""
                bar.update(stats=f"loss {rec['loss']:.3f} acc {rec['train_accuracy']:.3f}{va} {rec['samples_per_s']:.0f}/s")
                if job.on_epoch and dist.main:
                    job.on_epoch(rec)
                if state["stale"] >= hp["patience"]:
                    break
    finally:
        bar.close()
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    return {"history": state["history"], "best_epoch": state["best_epoch"], "device": str(device), "amp": amp,
            "resumed_from": resumed_from, "stream": stream, "world_size": dist.world, "warnings": warnings}


def _predict(model, data, device, autocast, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities of ``data`` in its stored order (eval mode, no RNG used)."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode(), autocast():
        for xb, _ in data.batches(torch.arange(data.n), batch_size):
            xb = {s: v.to(device, non_blocking=True) for s, v in xb.items()}
            out.append(torch.softmax(model(**xb).float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


# ----------------------------------------------------------------------------- checkpoints


class _Holder:
    """Adapter so :func:`persist.save_torch` can store any ``{name: tensor}`` mapping."""

    def __init__(self, state: dict[str, Any]):
        self._state = state

    def state_dict(self) -> dict[str, Any]:
        return self._state


def _save_checkpoint(path: Path, key: str, epoch: int, state: dict, model, opt, scaler, gen, np_rng) -> None:
    """Write the resumable state atomically (temporary file + ``os.replace``); no pickle."""
    import torch

    from genre_cli.models import persist

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "genre-train-checkpoint"
            f.attrs["resume_key"] = key
            f.attrs["epoch"] = epoch
            for k in ("history", "best_epoch", "best_score", "stale"):
                f.attrs[k] = json.dumps(state[k])
            persist.save_torch(f.create_group("model"), model)
            if state["best_state"] is not None:
                persist.save_torch(f.create_group("best"), _Holder(state["best_state"]))
            sd = opt.state_dict()
            tensors, meta = {}, {}
            for pid, st in sd["state"].items():
                entry = {}
                for k, v in st.items():
                    if torch.is_tensor(v):
                        tensors[f"{pid}.{k}"] = v
                        entry[k] = {"tensor": f"{pid}.{k}"}
                    else:
                        entry[k] = v
                meta[str(pid)] = entry
            og = f.create_group("optimizer")
            persist.save_torch(og.create_group("tensors"), _Holder(tensors))
            og.attrs["state"] = json.dumps(meta)
            og.attrs["param_groups"] = json.dumps(sd["param_groups"])
            f.attrs["scaler"] = json.dumps(scaler.state_dict())
            rng = {"torch": torch.get_rng_state(), "generator": gen.get_state()}
            if torch.cuda.is_available():
                rng |= {f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
            persist.save_torch(f.create_group("rng"), _Holder(rng))
            f.attrs["numpy_rng"] = json.dumps(np_rng.bit_generator.state)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_checkpoint(path: Path, key: str, model, opt, scaler, gen, np_rng) -> dict | None:
    """Restore a checkpoint into the live objects; ``None`` when it belongs to other settings."""
    import torch

    from genre_cli.errors import ArtifactError
    from genre_cli.models import persist

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "genre-train-checkpoint":
                raise ArtifactError(f"{path}: not a training checkpoint")
            if f.attrs.get("resume_key") != key:
                return None
            persist.load_torch(f["model"], model)
            best = persist.load_torch_state(f["best"]) if "best" in f else None
            tensors = persist.load_torch_state(f["optimizer/tensors"])
            meta = json.loads(f["optimizer"].attrs["state"])
            opt_state = {int(pid): {k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v for k, v in st.items()}
                         for pid, st in meta.items()}
            opt.load_state_dict({"state": opt_state, "param_groups": json.loads(f["optimizer"].attrs["param_groups"])})
            scaler.load_state_dict(json.loads(f.attrs["scaler"]))
            rng = persist.load_torch_state(f["rng"])
            torch.set_rng_state(rng["torch"])
            gen.set_state(rng["generator"])
            cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda")), key=lambda k: int(k[4:]))]
            if cuda and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
            np_rng.bit_generator.state = json.loads(f.attrs["numpy_rng"])
            state = {k: json.loads(f.attrs[k]) for k in ("history", "best_epoch", "best_score", "stale")}
            state["best_state"] = best
            state["epoch"] = int(f.attrs["epoch"])
            return state
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable training checkpoint ({type(exc).__name__}: {exc})",
                            hint="delete it to start over") from None


# ----------------------------------------------------------------------------- writing


def _write_model(f, clf: Classifier, job: _Job, fit: dict[str, Any], seconds: float) -> None:
    from genre_cli.models import persist

    feats = job.feats
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
    str_dt = h5py.string_dtype("utf-8")
    for split in ("train", "validation"):
        m = s["split"] == split
        sp.create_dataset(split, data=np.array(list(s["track_id"][m]), dtype=object), dtype=str_dt)
        sp.create_dataset(f"{split}_groups", data=np.array(sorted({g for g in s["group"][m] if g}), dtype=object), dtype=str_dt)
    for k, v in {
        "model": clf.name, "model_kind": clf.kind, "model_config": clf.config, "inputs": clf.inputs,
        "input_shapes": {k: list(v) for k, v in clf.input_shapes.items()}, "labels": clf.labels,
        "feature_config": clf.feature_config, "segment_config": clf.segment_config, "history": fit["history"],
        "train": job.hp, "train_sources": job.sources,
    }.items():
        f.attrs[k] = artifacts.canonical_json(v) if not isinstance(v, str) else v
    f.attrs["best_epoch"] = int(fit["best_epoch"])
    f.attrs["epochs_run"] = len(fit["history"])
    f.attrs["device"] = str(fit["device"])
    f.attrs["amp"] = fit.get("amp", "off")
    f.attrs["world_size"] = int(fit.get("world_size", 1))
    f.attrs["stream"] = bool(fit.get("stream", False))
    f.attrs["wall_seconds"] = float(round(seconds, 3))
    f.attrs["features_fingerprint"] = feats.meta.fingerprint


__all__ = ["TrainConfig", "checkpoint_path", "class_weights", "resolve_amp", "resolve_hparams", "run", "spec_augment", "stream_threshold"]
