"""Training options (:class:`TrainConfig`) and hyper-parameter resolution.

Hyper-parameters
----------------
Every field of :class:`TrainConfig` left as ``None`` takes the model's adjustment to the recipe
when the registry's ``recipe`` metadata has one (e.g. 90 epochs for the Yang & Zhang 2019
networks), else the default training recipe (:data:`genre_cli.training.recipe.RECIPE`: AdamW,
warm-up + cosine, weight EMA, last weights kept, augmentation, label smoothing, mixup, automatic
class weights); with ``paper=True`` it takes the model's paper value when the registry's
``train`` metadata states one (e.g. Yang & Zhang 2019: Adadelta, lr 1.0, batch 50) and plain
training otherwise (:data:`genre_cli.training.recipe.PLAIN`). Explicit values override both:
flag > model's recipe change > recipe; with ``paper``, flag > paper > plain. A paper ``lr`` is only used with the paper's optimizer. The
*resolved* values are part of the fingerprint and stored in the artifact (``train`` attribute,
``train_sources``: ``flag`` / ``recipe`` / ``paper`` / ``plain``, ``default`` for an unset seed,
and ``train_notes``).

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
from genre_cli.training import recipe
from genre_cli.training.averaging import SELECTIONS
from genre_cli.training.schedule import SCHEDULES

OPTIMIZERS = ("adamw", "adam", "adadelta", "sgd")
AMP_MODES = ("auto", "bf16", "fp16", "off")
CLASS_WEIGHTS = ("none", "balanced", "auto")
#: Default learning rate per optimizer (Adadelta's is Zeiler's 1.0, as Keras and Yang & Zhang 2019).
DEFAULT_LR = recipe.DEFAULT_LR
#: Hyper-parameters the registry's ``train`` metadata may set.
PAPER_KEYS = recipe.PAPER_KEYS
#: The seed of training when none is given (source ``default``).
DEFAULT_SEED = 0
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


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _defaults(key: str, paper: str | None = None) -> str:
    """``[recipe 30; --paper: the paper's, else 30]``: an option's defaults for its help, from
    :data:`~genre_cli.training.recipe.RECIPE` and :data:`~genre_cli.training.recipe.PLAIN` (never
    written out by hand, so the help says what training does)."""
    text = f"recipe {_show(recipe.RECIPE[key])}"
    if paper is None and key in PAPER_KEYS:
        paper = f"the paper's, else {_show(recipe.PLAIN[key])}"
    elif paper is None and recipe.PLAIN[key] != recipe.RECIPE[key]:
        paper = _show(recipe.PLAIN[key])
    return f"[{text}; --paper: {paper}]" if paper else f"[{text}]"


#: ``--paper``'s learning rate and weight decay, for the options' help.
_PAPER_LR = "the paper's with its optimizer, else " + ", ".join(f"{v:g} {k}" for k, v in DEFAULT_LR.items())
_PAPER_WD = f"0 if the model declares L2, else {recipe.PLAIN['weight_decay']:g}"


@dataclass(frozen=True)
class TrainConfig(Config):
    """Training settings; ``None`` = the default recipe (or, with ``paper``, the paper's value).

    Attributes
    ----------
    paper : bool
        Defaults from the model's paper and plain training instead of the recipe (:mod:`genre_cli.training.recipe`).
    patience : int >= 0
        Early stopping after this many epochs without a better selection score (0 = never).
    schedule : {"constant", "cosine", "onecycle"}
        Learning-rate schedule (:mod:`genre_cli.training.schedule`); ``warmup`` its warm-up fraction.
    ema : float in [0, 1)
        Decay of the weight moving average (0 = off); validation and the saved model use it.
    select : {"last", "best", "smoothed"}
        Which epoch's weights are kept (:class:`genre_cli.training.averaging.Selector`); the score is the
        validation track balanced accuracy.
    class_weights : {"none", "balanced", "auto"}
        ``balanced`` weighs the loss by ``n / (n_classes * count_c)`` (sklearn's rule); ``auto``
        does so when the training classes are imbalanced (:func:`genre_cli.training.recipe.auto_class_weights`).
    label_smoothing : float in [0, 1)
    specaugment : bool
        Random time masks (and frequency masks on mel/STFT) on spectrogram inputs.
    time_shift, freq_shift, eq
        Training-batch augmentations (:mod:`genre_cli.training.augment`): largest circular time shift
        (fraction of the window), largest frequency shift (bins), random EQ strength.
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
    paper: bool = opt(
        False,
        "--paper",
        "The model's paper settings (optimizer, lr, batch, epochs) and plain training instead of the default recipe.",
        type=bool,
    )
    epochs: int | None = opt(None, "--epochs", f"Epochs {_defaults('epochs')}.", type=int, minimum=1, nullable=True)
    batch_size: int | None = opt(
        None, "--batch-size", f"Batch size per process {_defaults('batch_size')}.", type=int, minimum=1, nullable=True
    )
    lr: float | None = opt(
        None,
        "--lr",
        f"Peak learning rate {_defaults('lr', _PAPER_LR)}.",
        type=float,
        above=0,
        nullable=True,
    )
    optimizer: str | None = opt(
        None,
        "--optimizer",
        f"adamw | adam | adadelta | sgd {_defaults('optimizer')}.",
        type=str,
        choices=OPTIMIZERS,
        nullable=True,
    )
    weight_decay: float | None = opt(
        None,
        "--weight-decay",
        f"Weight decay of parameters without the model's own per-layer L2 {_defaults('weight_decay', _PAPER_WD)}.",
        type=float,
        minimum=0,
        nullable=True,
    )
    patience: int | None = opt(
        None,
        "--patience",
        f"Early stopping: epochs without a better validation score, 0 = never {_defaults('patience')}.",
        type=int,
        minimum=0,
        nullable=True,
    )
    schedule: str | None = opt(
        None,
        "--schedule",
        f"Learning-rate schedule: constant | cosine (warm-up + cosine) | onecycle {_defaults('schedule')}.",
        type=str,
        choices=SCHEDULES,
        nullable=True,
    )
    warmup: float | None = opt(
        None, "--warmup", f"Warm-up fraction of all steps {_defaults('warmup')}.", type=float, minimum=0, maximum=0.999, nullable=True
    )
    ema: float | None = opt(
        None,
        "--ema",
        f"Weight moving-average decay per step, 0 = off {_defaults('ema')}.",
        type=float,
        minimum=0,
        maximum=0.99999,
        nullable=True,
    )
    select: str | None = opt(
        None,
        "--select",
        f"Weights kept: last | best (validation epoch) | smoothed (best 3-epoch running mean) {_defaults('select')}.",
        type=str,
        choices=SELECTIONS,
        nullable=True,
    )
    class_weights: str | None = opt(
        None,
        "--class-weights",
        f"none | balanced | auto (balanced when the classes are imbalanced) {_defaults('class_weights')}.",
        type=str,
        choices=CLASS_WEIGHTS,
        nullable=True,
    )
    label_smoothing: float | None = opt(
        None,
        "--label-smoothing",
        f"Label smoothing of the loss, in [0, 1) {_defaults('label_smoothing')}.",
        type=float,
        minimum=0,
        maximum=0.999,
        nullable=True,
    )
    specaugment: bool | None = opt(
        None,
        "--specaugment/--no-specaugment",
        f"Time (and on mel/STFT frequency) masks on spectrogram inputs {_defaults('specaugment')}.",
        type=bool,
        nullable=True,
    )
    time_shift: float | None = opt(
        None,
        "--time-shift",
        f"Largest random circular time shift, fraction of the window {_defaults('time_shift')}.",
        type=float,
        minimum=0,
        maximum=0.999,
        nullable=True,
    )
    freq_shift: int | None = opt(
        None,
        "--freq-shift",
        f"Largest random frequency shift of mel/STFT inputs, bins {_defaults('freq_shift')}.",
        type=int,
        minimum=0,
        nullable=True,
    )
    eq: float | None = opt(
        None,
        "--eq",
        f"Random EQ curve strength on mel/STFT inputs, normalised units {_defaults('eq')}.",
        type=float,
        minimum=0,
        nullable=True,
    )
    mixup: float | None = opt(
        None, "--mixup", f"Mixup alpha, 0 = off {_defaults('mixup')}.", type=float, minimum=0, metavar="ALPHA", nullable=True
    )
    seed: int | None = opt(
        None,
        "--seed",
        f"Seed of initialisation, shuffling, dropout and augmentation [default: {DEFAULT_SEED}].",
        type=int,
        nullable=True,
    )
    device: str = opt("auto", "--device", "auto | cpu | cuda | cuda:N (cuda without a GPU is an error).", type=str)
    amp: str = opt(
        "auto", "--amp", "Mixed precision on CUDA: auto (bf16 if supported, else fp16) | bf16 | fp16 | off.", type=str, choices=AMP_MODES
    )
    stream: bool | None = opt(
        None, "--stream/--no-stream", "Stream batches from HDF5 instead of memory [default: automatic by size].", type=bool, nullable=True
    )
    resume: bool = opt(False, "--resume", "Continue from OUT.ckpt.h5 when it was written with the same settings.", type=bool)

    @property
    def seed_value(self) -> int:
        """The seed training uses: ``seed``, or :data:`DEFAULT_SEED` when none was given."""
        return DEFAULT_SEED if self.seed is None else self.seed

    def to_params(self) -> dict[str, Any]:
        """The unresolved settings without execution fields (see :func:`resolve_hparams`); the
        seed as used (:attr:`seed_value`), so no seed and ``--seed 0`` are the same settings."""
        d = asdict(self)
        for k in EXECUTION_FIELDS:
            d.pop(k)
        d["seed"] = self.seed_value
        return d


def resolve_hparams(cfg: TrainConfig, info: dict[str, Any], *, declares_l2: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolved hyper-parameters and where each came from (``flag`` | ``recipe`` | ``paper`` | ``plain``;
    the seed: ``flag`` or ``default``).

    Device-independent (the same on CPU and CUDA). sklearn models only use ``seed``.
    ``class_weights`` may still be ``auto`` (resolved against the training labels by the stage).
    Raises :class:`UsageError` for invalid values.
    """
    seed_source = "default" if cfg.seed is None else "flag"
    if info["kind"] == "sklearn":
        return {"seed": cfg.seed_value}, {"seed": seed_source}
    given = {k: getattr(cfg, k) for k in recipe.KEYS}
    out, src = recipe.resolve(given, info.get("train") or {}, use_paper=cfg.paper, declares_l2=declares_l2, model_recipe=info.get("recipe"))
    if out["optimizer"] not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {out['optimizer']!r}; valid: {', '.join(OPTIMIZERS)}")
    out["seed"], src["seed"] = cfg.seed_value, seed_source
    _check_hparams(out)
    return out, src


#: How the warnings of :func:`without_validation` begin (``genre cv``, which says it once, drops them).
NO_VALIDATION = "no validation split"


def without_validation(hp: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Set what needs a validation split to what training does without one, in place:
    ``select`` -> ``last`` and ``patience`` -> 0 (nothing scores an epoch).

    Returns
    -------
    notes : dict
        ``{"select": "last (no validation split; --select best needs one)", ...}`` for the
        artifact's ``train_notes`` (printed in the summary and by ``genre info``).
    warnings : list of str
        One line per setting changed, each starting with :data:`NO_VALIDATION`.
    """
    notes: dict[str, str] = {}
    warnings: list[str] = []

    def asked(key: str) -> str:
        flag = f"--{key} {hp[key]}"
        return flag if sources.get(key) == "flag" else f"{flag} ({sources.get(key, 'default')})"

    if hp.get("select", "last") != "last":
        what = asked("select")
        notes["select"] = f"last ({NO_VALIDATION}; {what} needs one)"
        warnings.append(f"{NO_VALIDATION}: {what} needs one to score epochs; the last weights are kept (select: last)")
        hp["select"] = "last"
    if hp.get("patience"):
        what = asked("patience")
        notes["patience"] = f"0 ({NO_VALIDATION}; {what} needs one)"
        warnings.append(f"{NO_VALIDATION}: {what} needs one to stop early; all {hp['epochs']} epochs run (patience: 0)")
        hp["patience"] = 0
    return notes, warnings


def _check_hparams(hp: dict[str, Any]) -> None:
    """The resolved values (a paper's included) must be usable."""
    for key, low in (("epochs", 1), ("batch_size", 1), ("patience", 0), ("freq_shift", 0)):
        v = hp[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise UsageError(f"{key.replace('_', '-')} must be an integer >= {low}, got {v!r}")
    if not isinstance(hp["lr"], (int, float)) or not hp["lr"] > 0:
        raise UsageError(f"lr must be > 0, got {hp['lr']!r}")
    if not isinstance(hp["weight_decay"], (int, float)) or hp["weight_decay"] < 0:
        raise UsageError(f"weight-decay must be >= 0, got {hp['weight_decay']!r}")
    if hp["class_weights"] not in CLASS_WEIGHTS:
        raise UsageError(f"class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {hp['class_weights']!r}")
    if hp["schedule"] not in SCHEDULES:
        raise UsageError(f"schedule must be one of {', '.join(SCHEDULES)}, got {hp['schedule']!r}")
    if hp["select"] not in SELECTIONS:
        raise UsageError(f"select must be one of {', '.join(SELECTIONS)}, got {hp['select']!r}")
    for key, lo, hi in (("label_smoothing", 0.0, 1.0), ("warmup", 0.0, 1.0), ("ema", 0.0, 1.0), ("time_shift", 0.0, 1.0)):
        v = hp[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) < hi:
            raise UsageError(f"{key.replace('_', '-')} must be in [{lo:g}, {hi:g}), got {v!r}")
    for key in ("mixup", "eq"):
        if isinstance(hp[key], bool) or not isinstance(hp[key], (int, float)) or float(hp[key]) < 0:
            raise UsageError(f"{key} must be >= 0, got {hp[key]!r}")
    if not isinstance(hp["specaugment"], bool):
        raise UsageError(f"specaugment must be true or false, got {hp['specaugment']!r}")
