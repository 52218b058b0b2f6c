"""Which training settings a run uses, and where each came from.

Two sets of defaults for the settings a user did not give:

:data:`RECIPE` (the default)
    A training recipe for small music datasets trained from scratch, the same for every torch
    model: AdamW, warm-up + cosine decay, an exponential moving average of the weights, the
    final (averaged) weights kept rather than one lucky epoch, label smoothing, balanced class
    weights when the classes are imbalanced, mixup, and augmentations that keep the style but
    change what another drum kit or recording changes (a frequency shift of up to 4 mel bins, a
    random smooth EQ curve). Chosen on validation data only, never a test split (groove-styles'
    official validation split, rendered with the training kit and with a second kit the
    training never hears; ``docs/training.md`` has the runs): the kit augmentations cut the drop
    on the other kit from 16.7 to 6.4 points of track balanced accuracy; random time shifts and
    SpecAugment masks slowed learning and scored lower, so they are available but off.

``--paper`` (:data:`PLAIN` + the paper's values)
    The paper's stated hyper-parameters (the registry's ``train`` metadata: e.g. Adadelta, lr 1.0,
    batch 50 for ``dupconv``); settings the paper does not state take plain values — constant
    learning rate, no averaging, no augmentation, the best validation epoch kept, early stopping.
    A paper ``lr`` is only used with the paper's optimizer.

A model may adjust the recipe where it measurably needs to (the registry's ``recipe`` metadata:
the Yang & Zhang 2019 networks train for 90 epochs instead of 30, as they converge slowly);
such values still have the source ``recipe``.

Explicit values (flags) override both. :func:`resolve` returns the values and, per setting, its
source: ``flag``, ``recipe``, ``paper`` or ``plain``.
"""

from __future__ import annotations

from typing import Any

#: Settings the registry's ``train`` metadata may state (the papers' hyper-parameters).
PAPER_KEYS = ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience")
#: Default learning rate per optimizer (Adadelta's is Zeiler's 1.0, as in Keras).
DEFAULT_LR = {"adamw": 1e-3, "adam": 1e-3, "adadelta": 1.0, "sgd": 1e-2}

#: The default recipe (see the module docstring). ``patience`` 0 = no early stopping.
RECIPE: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-2,
    "patience": 0,
    "schedule": "cosine",
    "warmup": 0.05,
    "ema": 0.999,
    "select": "last",
    "class_weights": "auto",
    "label_smoothing": 0.1,
    "mixup": 0.2,
    "specaugment": False,
    "time_shift": 0.0,
    "freq_shift": 4,
    "eq": 0.2,
}
#: ``--paper``: values for what the paper does not state (plain training, no regularising extras).
PLAIN: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "patience": 10,
    "schedule": "constant",
    "warmup": 0.0,
    "ema": 0.0,
    "select": "best",
    "class_weights": "none",
    "label_smoothing": 0.0,
    "mixup": 0.0,
    "specaugment": False,
    "time_shift": 0.0,
    "freq_shift": 0,
    "eq": 0.0,
}
#: Every resolved setting, in order (``seed`` is always given).
KEYS = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "patience",
    "schedule",
    "warmup",
    "ema",
    "select",
    "class_weights",
    "label_smoothing",
    "mixup",
    "specaugment",
    "time_shift",
    "freq_shift",
    "eq",
)
#: ``class_weights: auto`` weighs the loss when the largest class has this many times the
#: training segments of the smallest.
IMBALANCE_RATIO = 1.5


def resolve(
    given: dict[str, Any],
    paper: dict[str, Any],
    *,
    use_paper: bool,
    declares_l2: bool = False,
    model_recipe: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolved settings and their sources.

    Parameters
    ----------
    given : dict
        Setting -> value the user gave, ``None`` = not given.
    paper : dict
        The model's registry ``train`` metadata (the paper's values).
    use_paper : bool
        ``--paper``: the paper's values, else :data:`PLAIN`; otherwise :data:`RECIPE`.
    declares_l2 : bool
        The model has per-layer L2 penalties (Keras-style); ``--paper`` then gives the other
        parameters no weight decay (the papers regularise only those layers).
    model_recipe : dict or None
        The model's adjustments to :data:`RECIPE` (registry ``recipe`` metadata); ignored with
        ``use_paper``.
    """
    paper = {k: v for k, v in (paper or {}).items() if k in PAPER_KEYS} if use_paper else {}
    base = dict(PLAIN, weight_decay=0.0 if declares_l2 else PLAIN["weight_decay"]) if use_paper else RECIPE | (model_recipe or {})
    fallback = "plain" if use_paper else "recipe"
    out: dict[str, Any] = {}
    src: dict[str, str] = {}

    def pick(key: str, default: Any) -> None:
        if given.get(key) is not None:
            out[key], src[key] = given[key], "flag"
        elif key in paper:
            out[key], src[key] = paper[key], "paper"
        else:
            out[key], src[key] = default, fallback

    for key in ("epochs", "batch_size", "optimizer"):
        pick(key, base[key])
    if given.get("lr") is None and "lr" in paper and paper.get("optimizer", out["optimizer"]) != out["optimizer"]:
        out["lr"], src["lr"] = DEFAULT_LR.get(out["optimizer"], 1e-3), fallback  # the paper's lr belongs to its optimizer
    elif given.get("lr") is None and "lr" not in paper:
        out["lr"], src["lr"] = (
            (base["lr"] if out["optimizer"] == base["optimizer"] and "lr" in base else DEFAULT_LR.get(out["optimizer"], 1e-3)),
            fallback,
        )
    else:
        pick("lr", None)
    for key in KEYS:
        if key not in out:
            pick(key, base[key])
    return out, src


def describe(values: dict[str, Any]) -> str:
    """``values`` (:data:`RECIPE` or :data:`PLAIN`) in words, for help texts: ``30 epochs, batch 32,
    adamw (lr 0.001, weight decay 0.01), cosine schedule with 5 % warm-up, ...``.

    Built from the values themselves, so the help cannot drift from what training does.
    """
    v = values
    lr = f"lr {v.get('lr', DEFAULT_LR.get(v['optimizer'], 1e-3)):g}, "
    parts = [
        f"{v['epochs']} epochs",
        f"batch {v['batch_size']}",
        f"{v['optimizer']} ({lr}weight decay {v['weight_decay']:g})",
        f"{v['schedule']} learning rate" + (f" with {v['warmup']:.0%} warm-up" if v["warmup"] else ""),
        f"weight EMA {v['ema']:g}" if v["ema"] else "no weight averaging",
        "the last weights kept" if v["select"] == "last" else f"the {v['select']} validation epoch kept",
        f"early stopping after {v['patience']} epochs without improvement" if v["patience"] else "no early stopping (patience 0)",
        f"class weights {v['class_weights']}",
    ]
    extras = [
        f"label smoothing {v['label_smoothing']:g}" if v["label_smoothing"] else "",
        f"mixup {v['mixup']:g}" if v["mixup"] else "",
        f"frequency shift up to {v['freq_shift']} bins" if v["freq_shift"] else "",
        f"random EQ {v['eq']:g}" if v["eq"] else "",
        f"time shift up to {v['time_shift']:g} of the window" if v["time_shift"] else "",
        "SpecAugment" if v["specaugment"] else "",
    ]
    extras = [e for e in extras if e]
    return ", ".join(parts + (extras or ["no augmentation, label smoothing or mixup"]))


def auto_class_weights(counts) -> tuple[str, str]:
    """``("balanced" | "none", why)`` for ``class_weights: auto`` from per-class training counts."""
    present = [int(c) for c in counts if c > 0]
    if len(present) < 2:
        return "none", "one class"
    ratio = max(present) / min(present)
    choice = "balanced" if ratio >= IMBALANCE_RATIO else "none"
    return choice, f"largest/smallest class = {max(present)}/{min(present)} training segments ({ratio:.1f}x)"


__all__ = ["DEFAULT_LR", "IMBALANCE_RATIO", "KEYS", "PAPER_KEYS", "PLAIN", "RECIPE", "auto_class_weights", "describe", "resolve"]
