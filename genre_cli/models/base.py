"""Shared pieces of the torch model zoo: the :class:`GenreModule` protocol and small helpers.

Every torch model in the zoo is a :class:`GenreModule`:

* ``forward`` takes keyword inputs named by the model's input *slots*
  (``model(spectrogram=x)``, ``model(spectrogram=mel, vector=feats)``) and returns
  **logits** of shape ``(batch, n_classes)``; softmax belongs to the loss.
* Spectrogram slots arrive as ``(batch, n_frames, n_bins)`` (time x feature); 2-D CNNs
  turn them into a one-channel image ``(batch, 1, n_bins, n_frames)`` — frequency is the
  image height, time the width, as in the papers' figures (and as Yang & Zhang's (2019) "256x4"
  kernel, 256 mel bins x 4 frames, requires).
* Vector slots arrive as ``(batch, d)``.

L2 regularisation (per layer)
-----------------------------
Papers state L2 as a Keras-style penalty ``lambda * sum(w**2)`` added to the loss, per layer.
Each module records these in :attr:`GenreModule.l2_penalties` (parameter name -> lambda) and
offers two equivalent ways for the trainer to apply them — use ONE of them, not both:

* :meth:`GenreModule.param_groups_l2` — parameter groups for ``torch.optim`` with
  ``weight_decay = 2 * lambda`` per group (the gradient of ``lambda*w**2`` is ``2*lambda*w``;
  exact for optimizers that add weight decay to the gradient — SGD, Adam, Adadelta, RMSprop —
  but not for the decoupled decay of AdamW);
* :meth:`GenreModule.l2_penalty` — the penalty term itself, a scalar tensor to add to the loss
  (exact Keras semantics with any optimizer).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genre_cli.errors import UsageError


class GenreModule(nn.Module):
    """Base class: input slots, logits out, per-parameter L2 penalties."""

    #: input slot names, in the order the registry lists them
    slots: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        #: parameter name (as in ``named_parameters``) -> Keras-style L2 coefficient lambda
        self.l2_penalties: dict[str, float] = {}

    # -- L2 ---------------------------------------------------------------------------------
    def set_l2(self, prefix_or_module: str | nn.Module, lam: float, *, weights_only: bool = True) -> None:
        """Give every (weight) parameter under a submodule / name prefix the L2 coefficient ``lam``."""
        if isinstance(prefix_or_module, nn.Module):
            prefix = next(n for n, m in self.named_modules() if m is prefix_or_module)
        else:
            prefix = prefix_or_module
        for name, _p in self.named_parameters():
            if name.startswith(prefix + ".") or name == prefix:
                if weights_only and not name.endswith("weight"):
                    continue
                if lam:
                    self.l2_penalties[name] = float(lam)

    def param_groups_l2(self, base_weight_decay: float = 0.0) -> list[dict]:
        """``torch.optim`` parameter groups: ``weight_decay = 2*lambda`` per L2 coefficient.

        Parameters without a penalty go to one group with ``base_weight_decay``. Groups are
        ordered by decay and carry a ``"names"`` list (optimizers ignore extra keys).
        """
        groups: dict[float, tuple[list[str], list[nn.Parameter]]] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            wd = 2.0 * self.l2_penalties[name] if name in self.l2_penalties else float(base_weight_decay)
            names, params = groups.setdefault(wd, ([], []))
            names.append(name)
            params.append(p)
        return [{"params": ps, "weight_decay": wd, "names": ns} for wd, (ns, ps) in sorted(groups.items())]

    def l2_penalty(self) -> torch.Tensor:
        """``sum(lambda * ||w||^2)`` over penalised parameters, to add to the loss."""
        params = dict(self.named_parameters())
        total = torch.zeros((), device=next(self.parameters()).device)
        for name, lam in self.l2_penalties.items():
            total = total + lam * params[name].pow(2).sum()
        return total


# -- helpers ---------------------------------------------------------------------------------
def to_image(x: torch.Tensor) -> torch.Tensor:
    """(batch, n_frames, n_bins) -> (batch, 1, n_bins, n_frames): one channel, freq = height."""
    if x.dim() != 3:
        raise ValueError(f"expected a (batch, n_frames, n_bins) spectrogram, got shape {tuple(x.shape)}")
    return x.transpose(1, 2).unsqueeze(1)


def check_prob(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise UsageError(f"{name} must be a probability in [0, 1), got {value!r}")
    return float(value)


def check_pos_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_ints(name: str, values: Iterable, minimum: int = 1) -> tuple[int, ...]:
    try:
        vals = tuple(values)
    except TypeError:
        raise UsageError(f"{name} must be a sequence of integers, got {values!r}") from None
    if not vals:
        raise UsageError(f"{name} must not be empty")
    for v in vals:
        check_pos_int(name, v, minimum)
    return vals


@torch.no_grad()
def flat_size(body: nn.Module, shape: tuple[int, ...]) -> int:
    """Number of features ``body`` produces for one sample of ``shape`` (dry run at build time)."""
    was = body.training
    body.eval()
    n = body(torch.zeros((1, *shape))).flatten(1).shape[1]
    body.train(was)
    return int(n)


class SamePad1d(nn.Module):
    """Keras/TensorFlow ``padding="same"`` along the last axis for stride 1 (extra pad on the right).

    ``nn.Conv*(padding="same")`` does the same but warns for even kernels; this is explicit.
    """

    def __init__(self, kernel: int):
        super().__init__()
        total = kernel - 1
        self.pad = (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, self.pad)


def for_inference(model: nn.Module) -> nn.Module:
    """Prepare a trained model for inference only (evaluate, predict), in place.

    * Every ``Conv2d`` directly followed by a ``BatchNorm2d`` in an ``nn.Sequential`` gets
      the normalisation folded into its weights and bias (``fuse_conv_bn_eval``); the
      BatchNorm becomes an ``Identity``.
    * A symmetric ``ZeroPad2d`` directly before an unpadded ``Conv2d`` becomes the conv's own
      padding (no padded copy of the activations; asymmetric 'same' pads of even kernels stay).
    * Models with 2-D convolutions switch to the ``channels_last`` memory layout, for which
      oneDNN's CPU kernels (convolution, max-pooling) are vectorised over channels.

    On the Schrader et al. 2021 CNN (cnn6, 128 x 130 log-mel, batch 64, 2 CPU threads) this cut the
    forward pass from 2.9 to ~1.0 ms per window; outputs change by float rounding only
    (~1e-8). The model is put in eval mode and must not be trained afterwards (its
    BatchNorm layers are gone).

    A model with its own ``for_inference()`` method (e.g. musicnn, whose BatchNorm follows
    the ReLU and cannot be folded this way) is prepared by that method instead.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    own = getattr(model, "for_inference", None)
    if callable(own):
        return own()
    model.eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
        for a, b in zip(names, names[1:]):
            pad, conv = seq._modules[a], seq._modules[b]
            if isinstance(pad, nn.ZeroPad2d) and isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros":
                left, right, top, bottom = pad.padding
                if left == right and top == bottom and tuple(conv.padding) == (0, 0):
                    conv.padding = (top, left)
                    seq._modules[a] = nn.Identity()
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model
