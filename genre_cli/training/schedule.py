"""Learning-rate schedules: a multiplier of the base learning rate per optimizer step.

Stateless by design: the factor is a pure function of the global step (``epoch * batches + i``),
so a resumed run recomputes it and checkpoints need nothing extra. The trainer calls
:func:`set_lr` before every optimizer step.

``constant``
    Factor 1 (the papers' plain training).
``cosine``
    Linear warm-up from ``WARMUP_START`` to 1 over the first ``warmup`` fraction of all steps,
    then half a cosine down to ``final`` at the last step (Loshchilov & Hutter 2017, "SGDR";
    warm-up as in Goyal et al. 2017, "Accurate, large minibatch SGD"). Warm-up keeps Adam's
    first, poorly estimated steps small; the decay ends training in a flat region, so the last
    weights are a good model without picking a lucky epoch.
``onecycle``
    Warm-up over ``warmup`` (default 0.3) from ``1/25`` to 1, then cosine to ``1/10^4``
    (Smith & Topin 2019, "Super-convergence"; torch's ``OneCycleLR`` defaults).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "onecycle")
WARMUP_START = 0.01


def lr_factor(kind: str, step: int, total: int, *, warmup: float = 0.05, final: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based) of ``total``.

    Parameters
    ----------
    kind : {"constant", "cosine", "onecycle"}
    step : int >= 0
    total : int >= 1
        Optimizer steps in the whole run (epochs x batches per epoch).
    warmup : float in [0, 1)
        Fraction of ``total`` spent warming up.
    final : float in [0, 1]
        Factor reached at the last step (``cosine``).
    """
    if kind == "constant":
        return 1.0
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
    total = max(1, int(total))
    step = min(max(0, int(step)), total - 1)
    start, end = (WARMUP_START, final) if kind == "cosine" else (1 / 25, 1e-4)
    n_warm = int(round(warmup * total))
    if step < n_warm:
        return start + (1.0 - start) * (step + 1) / n_warm
    rest = max(1, total - n_warm - 1)
    t = (step - n_warm) / rest
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def set_lr(optimizer, base_lrs: list[float], factor: float) -> None:
    """Set every parameter group's ``lr`` to its base value times ``factor``."""
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


__all__ = ["SCHEDULES", "lr_factor", "set_lr"]
