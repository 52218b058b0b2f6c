"""Training options (:class:`TrainConfig`) and hyper-parameter resolution.

Hyper-parameters
----------------
Every field of :class:`TrainConfig` left as ``None`` takes the model's paper value when the
registry's ``train`` metadata states one (e.g. Yang & Zhang 2019: Adadelta, lr 1.0, batch 50),
otherwise our default (:data:`DEFAULTS`); explicit values override both. A paper ``lr`` is only
used with the paper's optimizer (Adadelta's lr 1.0 would wreck Adam), otherwise the optimizer's
usual lr (:data:`DEFAULT_LR`). The *resolved* values are part of the fingerprint and stored in
the artifact (``train`` attribute, and ``train_sources``: ``flag`` / ``paper`` / ``default``).

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
CUDA asked without one is a :class:`~genre_cli.errors.DeviceError`), ``amp`` (``auto``: bf16 when
the GPU supports it, else fp16 with a ``GradScaler``; always off on CPU), ``stream`` (read
batches from HDF5 instead of holding the split in memory; ``None``: automatic above
:func:`genre_cli.training.data.stream_threshold` bytes) and ``resume``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from genre_cli.errors import UsageError
from genre_cli.options import Config, opt

OPTIMIZERS = ("adamw", "adam", "adadelta", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "off")
CLASS_WEIGHTS = ("none", "balanced")
#: Our defaults for hyper-parameters the paper does not give.
DEFAULTS: dict[str, Any] = {"epochs": 30, "batch_size": 32, "optimizer": "adamw", "patience": 10}
#: Default learning rate per optimizer (Adadelta's is Zeiler's 1.0, as Keras and Yang & Zhang 2019).
DEFAULT_LR = {"adamw": 1e-3, "adam": 1e-3, "adadelta": 1.0, "sgd": 1e-2}
DEFAULT_WEIGHT_DECAY = 1e-4
#: Hyper-parameters the registry's ``train`` metadata may set.
PAPER_KEYS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience")
#: Fields that change how, not what, is trained: left out of the fingerprint.
EXECUTION_FIELDS = ("device", "amp", "stream", "resume")
#: Left out of the resume key: a checkpoint after epoch k does not depend on them.
RESUME_FREE = ("epochs", "patience")


def parse_pairs(items: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` (``--set``, ``--input``) as a dict; values parsed as JSON when they are JSON."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


@dataclass(frozen=True)
class TrainConfig(Config):
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
        Stream batches from HDF5 (``None``: when the train split exceeds the threshold).
    """

    model: str = opt("cnn6", "--model", "Registered model name (see `genre train --list-models`).", type=str, aliases=("-m",))
    model_config: dict[str, Any] = opt(
        {},
        "--set",
        "Model option KEY=VALUE (JSON value), repeatable.",
        type=dict,
        cli_type=list[str],
        parse=parse_pairs,
        cli_default=None,
        metavar="KEY=VALUE",
    )
    features: dict[str, str] = opt(
        {},
        "--input",
        "Feature for an input slot, SLOT=FEATURE (e.g. spectrogram=mfcc), repeatable.",
        type=dict,
        cli_type=list[str],
        cli_default=None,
        metavar="SLOT=FEATURE",
        parse=lambda items: {k: str(v) for k, v in parse_pairs(items).items()},
    )
    epochs: int | None = opt(None, "--epochs", "Epochs [default: the model paper's, else 30].", type=int, minimum=1, nullable=True)
    batch_size: int | None = opt(
        None, "--batch-size", "Batch size per process [default: the paper's, else 32].", type=int, minimum=1, nullable=True
    )
    lr: float | None = opt(
        None,
        "--lr",
        "Learning rate [default: the paper's with its optimizer, else 1e-3 adam(w), 1.0 adadelta, 1e-2 sgd].",
        type=float,
        above=0,
        nullable=True,
    )
    optimizer: str | None = opt(
        None,
        "--optimizer",
        "adamw | adam | adadelta | sgd [default: the paper's, else adamw].",
        type=str,
        choices=OPTIMIZERS,
        nullable=True,
    )
    weight_decay: float | None = opt(
        None,
        "--weight-decay",
        "Weight decay of parameters without the model's own per-layer L2 [default: 0 if the model declares L2, else 1e-4].",
        type=float,
        minimum=0,
        nullable=True,
    )
    patience: int | None = opt(
        None, "--patience", "Early stopping: epochs without validation improvement [default 10].", type=int, minimum=1, nullable=True
    )
    class_weights: str = opt(
        "none", "--class-weights", "none | balanced (weigh the loss against class imbalance).", type=str, choices=CLASS_WEIGHTS
    )
    label_smoothing: float = opt(0.0, "--label-smoothing", "Label smoothing of the loss, in [0, 1).", type=float, minimum=0, maximum=0.999)
    specaugment: bool = opt(False, "--specaugment", "Time/frequency masking of spectrogram inputs (training only).", type=bool)
    mixup: float = opt(0.0, "--mixup", "Mixup alpha (0 = off).", type=float, minimum=0, metavar="ALPHA")
    seed: int = opt(0, "--seed", "Seed of initialisation, shuffling, dropout and augmentation.", type=int)
    device: str = opt("auto", "--device", "auto | cpu | cuda | cuda:N (cuda without a GPU is an error).", type=str)
    amp: str = opt(
        "auto", "--amp", "Mixed precision on CUDA: auto (bf16 if supported, else fp16) | bf16 | fp16 | off.", type=str, choices=AMP_MODES
    )
    stream: bool | None = opt(
        None, "--stream/--no-stream", "Stream batches from HDF5 instead of memory [default: automatic by size].", type=bool, nullable=True
    )
    resume: bool = opt(False, "--resume", "Continue from OUT.ckpt.h5 when it was written with the same settings.", type=bool)

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
    """The resolved values (a paper's included) must be usable."""
    for key in ("epochs", "batch_size", "patience"):
        v = hp[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(f"{key.replace('_', '-')} must be an integer >= 1, got {v!r}")
    if not isinstance(hp["lr"], (int, float)) or not hp["lr"] > 0:
        raise UsageError(f"lr must be > 0, got {hp['lr']!r}")
    if not isinstance(hp["weight_decay"], (int, float)) or hp["weight_decay"] < 0:
        raise UsageError(f"weight-decay must be >= 0, got {hp['weight_decay']!r}")
    if hp["class_weights"] not in CLASS_WEIGHTS:
        raise UsageError(f"class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {hp['class_weights']!r}")
    if not 0.0 <= float(hp["label_smoothing"]) < 1.0:
        raise UsageError(f"label-smoothing must be in [0, 1), got {hp['label_smoothing']!r}")
    if float(hp["mixup"]) < 0:
        raise UsageError(f"mixup alpha must be >= 0, got {hp['mixup']!r}")
