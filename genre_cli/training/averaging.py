"""Weight averaging and model selection that do not hinge on one lucky epoch.

:class:`WeightEMA`
    An exponential moving average of the weights (Polyak & Juditsky 1992; as in "Mean teachers",
    Tarvainen & Valpola 2017, and timm's ``ModelEmaV2``): after every optimizer step
    ``avg = d * avg + (1 - d) * w``, with the decay warmed up as ``min(d, (1 + n) / (10 + n))``
    so the first averages are not dominated by the random initialisation. BatchNorm running
    statistics are averaged the same way. Validation and the saved model use the average.

:class:`Selector`
    Which epoch's weights to keep. ``last``: the final ones (with a decaying schedule and EMA,
    the end of training is the flat, well-averaged point). ``best``: the epoch with the best
    validation score (ties: lower validation loss). ``smoothed``: the best *running mean* of
    the validation score over a window of epochs, a criterion that one noisy epoch on a small
    validation set cannot win; the weights kept are those of the window's last epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SELECTIONS = ("last", "best", "smoothed")


class WeightEMA:
    """Exponential moving average of a module's floating-point parameters and buffers.

    Parameters
    ----------
    model : torch.nn.Module
    decay : float in (0, 1)
        Per-step decay (0.999 averages over roughly the last 1,000 steps).
    """

    def __init__(self, model, decay: float):
        import torch

        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.updates = 0
        with torch.no_grad():
            self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    def update(self, model) -> None:
        """Fold the model's current weights into the average (call after each optimizer step)."""
        import torch

        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            state = model.state_dict()
            for k, avg in self.shadow.items():
                avg.lerp_(state[k].detach(), 1.0 - d)

    @contextmanager
    def applied(self, model) -> Iterator[None]:
        """Temporarily put the averaged weights into ``model`` (e.g. for validation)."""
        import torch

        with torch.no_grad():
            state = model.state_dict()
            saved = {k: state[k].detach().clone() for k in self.shadow}
            for k, v in self.shadow.items():
                state[k].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for k, v in saved.items():
                    state[k].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.shadow)

    def load_state_dict(self, shadow: dict[str, Any], updates: int) -> None:
        import torch

        with torch.no_grad():
            for k, v in shadow.items():
                self.shadow[k].copy_(v)
        self.updates = int(updates)


class Selector:
    """Keeps track of the epoch whose weights are kept (see the module docstring).

    ``update(epoch, score, loss)`` returns True when this epoch's weights become the kept ones;
    ``stale`` counts epochs since the selection score last improved (for early stopping).
    """

    def __init__(self, mode: str, window: int = 3):
        if mode not in SELECTIONS:
            raise ValueError(f"unknown selection {mode!r}; valid: {', '.join(SELECTIONS)}")
        self.mode, self.window = mode, max(1, int(window))
        self.scores: list[float] = []
        self.best: list[float] = [-1.0, float("inf")]
        self.best_epoch = 0
        self.stale = 0

    def criterion(self) -> float:
        """The selection score of the latest epoch (running mean for ``smoothed``)."""
        recent = self.scores[-self.window :] if self.mode == "smoothed" else self.scores[-1:]
        return sum(recent) / len(recent)

    def update(self, epoch: int, score: float, loss: float) -> bool:
        self.scores.append(float(score))
        crit = self.criterion()
        improved = crit > self.best[0] or (crit == self.best[0] and loss < self.best[1])
        if improved:
            self.best, self.stale = [crit, float(loss)], 0
        else:
            self.stale += 1
        keep = True if self.mode == "last" else improved
        if keep:
            self.best_epoch = epoch
        return keep

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "window": self.window,
            "scores": self.scores,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.scores = [float(s) for s in state.get("scores", [])]
        self.best = list(state.get("best", [-1.0, float("inf")]))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.stale = int(state.get("stale", 0))


__all__ = ["SELECTIONS", "Selector", "WeightEMA"]
