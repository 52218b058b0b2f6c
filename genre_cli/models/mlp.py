"""Fully connected networks: Pun & Nazirkhanova's (2020) four-layer net and Verma et al.'s (2022) six-layer variant (``depth``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from genre_cli.errors import UsageError
from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, check_pos_int, check_prob
from genre_cli.papers import PUN_2020, VERMA_2022


def mlp_widths(depth: int, hidden: int, floor: int = 32) -> tuple[int, ...]:
    """Hidden widths halving from ``hidden`` with a floor: depth 4 -> 512, 256, 128, 64."""
    return tuple(max(hidden >> i, floor) for i in range(depth))


def dense_stack(d_in: int, widths: tuple[int, ...], dropout: float) -> nn.Sequential:
    """``Linear -> ReLU -> Dropout`` per width (Pun & Nazirkhanova 2020: "each layer used dropout and ReLU")."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(d_in, w), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        d_in = w
    return nn.Sequential(*layers)


class MLP(GenreModule):
    """Hidden ``Linear-ReLU-Dropout`` layers then a linear output (logits).

    Slot ``vector``: ``(batch, d)``; any extra trailing dims are flattened, so a flattened
    spectrogram (Verma et al. 2022 feeds flattened mel spectrograms) also works: declare
    ``input_shapes={"vector": (n_frames * n_bins,)}``.
    """

    slots = ("vector",)

    def __init__(self, d_in: int, n_out: int, widths: tuple[int, ...], dropout: float, weight_decay: float = 0.0):
        super().__init__()
        self.d_in = d_in
        self.body = dense_stack(d_in, widths, dropout)
        self.out = nn.Linear(widths[-1] if widths else d_in, n_out)
        # weight_decay is torch-style (decay = 2*lambda) -> Keras lambda = weight_decay / 2
        for name, _p in self.named_parameters():
            if name.endswith("weight") and weight_decay:
                self.l2_penalties[name] = weight_decay / 2.0

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(vector.flatten(1)))


@MODELS.register(
    "mlp",
    kind="torch",
    inputs=("vector",),
    source=f"{PUN_2020.short} (depth 4) / {VERMA_2022.short} (depth 6)",
    features={"vector": "handcrafted"},
    description="Fully connected net, ReLU + dropout per layer, L2 via weight decay; depth 4 (Pun & Nazirkhanova 2020) or 6 (Verma et al. "
    "2022).",
)
def mlp(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    depth: int = 4,
    hidden: int = 512,
    dropout: float = 0.3,
    weight_decay: float = 1e-3,
) -> MLP:
    """Pun & Nazirkhanova 2020, §4.2: "four layers and a softmax output layer ... Each layer used dropout and a ReLU
    activation ... cross-entropy loss with L2 regularization". Verma et al. 2022, §3.2: six ReLU layers,
    dropout and L2 tried. ``depth`` = number of hidden layers (4 or 6; any >= 1 accepted).

    Silent in both papers (figure 2 of Pun & Nazirkhanova 2020 is not in the text), our choices:
    widths halve from ``hidden=512`` with a floor of 32 (depth 4: 512-256-128-64; depth 6:
    512-256-128-64-32-32); dropout 0.3; L2 ``weight_decay=1e-3`` — the paper gives no value.
    ``weight_decay`` is in torch convention (gradient ``+ wd*w``) on all Linear weights, not
    biases; it is exposed through :meth:`param_groups_l2` / :meth:`l2_penalty` like every model.
    """
    check_pos_int("depth", depth)
    check_pos_int("hidden", hidden)
    check_prob("dropout", dropout)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise UsageError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    d_in = math.prod(input_shapes["vector"])
    return MLP(d_in, n_classes, mlp_widths(depth, hidden), dropout, float(weight_decay))
