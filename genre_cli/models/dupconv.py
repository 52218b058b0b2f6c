"""``dupconv`` (net1) and ``rescat`` (net2) of Yang & Zhang 2019.

"Music Genre Classification Using Duplicated Convolutional Layers in Neural Networks" (Interspeech 2019).

Input orientation
-----------------
The paper's input is 256 mel bins x 128 frames and its first kernel is 256x4 without padding: it
spans ALL mel bins and 4 frames, so after it the frequency axis is gone and every later "1x4"
conv runs along time only. We implement conv1 as ``Conv2d(1, 256, (n_bins, 4))`` on the
one-channel image ``(batch, 1, n_bins, n_frames)`` (kernel height follows ``input_shapes``, so
128-mel inputs work), and the 1x4 convs as ``Conv1d(256, c, 4)`` on ``(batch, 256, frames)`` —
identical to a 1x4 ``Conv2d`` on a height-1 map, same parameters. 1x4 convs use Keras
``padding="same"`` (pad 1 left, 2 right). Pooling is global over the time axis (net2 says so
explicitly; net1's parameter count, 1,001,162, only matches with global pooling). Reading the
mel bins as the 256 input channels of a 1-D conv would give the same count (it is the same
operation); biases on every conv and dense layer (Keras default) are needed for the exact match.

Parameter counts (256 x 128 input, 10 classes) — both match the paper's Table 2 exactly:

======  ==========================================================  =========  =========
net     layers (weights + biases)                                    ours       paper
======  ==========================================================  =========  =========
net1    conv1 256*256*4+256 = 262,400; conv2 256*256*4+256 =         1,001,162  1,001,162
        262,400; conv3, conv4 128*256*4+128 = 131,200 each;
        pooled 256+256+128+128 = 768; dense 768*256+256 = 196,864;
        256*64+64 = 16,448; 64*10+10 = 650
net2    conv1, conv2, conv3 262,400 each (conv3 = "same number of      857,322    857,322
        parameters as the two duplicated layers"); max+avg pool of
        the 256-ch sum = 512; dense 512*128+128 = 65,664;
        128*32+32 = 4,128; 32*10+10 = 330
======  ==========================================================  =========  =========

The count does not depend on the number of frames (global pooling) but conv1's kernel height is
``n_bins``: 128 mel bins give 131,328 fewer conv1 parameters.

Initialisation: Keras' defaults (:func:`~genre_cli.models.base.keras_init`: Glorot-uniform
kernels, zero biases), as the paper's Keras models started from.

L2 (per layer): ``l2_penalties`` holds the Keras coefficients — conv1 kernel 0.02, other conv
kernels 0.01, biases and dense layers none (Keras ``kernel_regularizer`` convention; the paper
only says "convolutional layers"). Apply them with ``model.param_groups_l2()`` (torch weight decay
``2*lambda`` per group) or add ``model.l2_penalty()`` to the loss — see
:mod:`genre_cli.models.base`. The paper trains with Adadelta (lr 1.0), batch 50.
"""

from __future__ import annotations

import torch
from torch import nn

from genre_cli.errors import UsageError
from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, SamePad1d, check_pos_int, check_prob, keras_init, to_image
from genre_cli.papers import YANG_ZHANG_2019


def _conv1xk(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(SamePad1d(k), nn.Conv1d(c_in, c_out, k))


def _check_input(shape: tuple[int, int], kernel: int) -> tuple[int, int]:
    n_frames, n_bins = shape
    if n_frames < kernel:
        raise UsageError(
            f"dupconv/rescat need at least {kernel} frames (first conv is n_bins x {kernel}, no padding); got input shape {shape}"
        )
    return n_frames, n_bins


class _Seed004(GenreModule):
    slots = ("spectrogram",)

    def _first(self, spectrogram: torch.Tensor) -> torch.Tensor:
        # (B, T, F) -> (B, 1, F, T) -> conv1 -> (B, C, 1, T-k+1) -> (B, C, T')
        return self.drop1(torch.relu(self.conv1(to_image(spectrogram))).squeeze(2))


class DupConv(_Seed004):
    """net1: conv1 (n_bins x 4, 256, valid) -> Dropout(0.2) -> conv2 (1x4, 256, same);
    conv3 and conv4 (1x4, 128, same) both read conv2's output. Global max-pool of conv1 and
    conv3, global average-pool of conv2 and conv4, concatenated (768) -> Dense 256 -> Dense 64 ->
    Dropout(0.1) -> Dense n_classes. ReLU after every conv and hidden dense layer."""

    def __init__(
        self,
        n_bins: int,
        n_classes: int,
        filters: int,
        kernel: int,
        dense: tuple[int, int],
        dropout1: float,
        dropout2: float,
        l2_first: float,
        l2_conv: float,
    ):
        super().__init__()
        half = filters // 2
        self.conv1 = nn.Conv2d(1, filters, (n_bins, kernel))
        self.drop1 = nn.Dropout(dropout1)
        self.conv2 = _conv1xk(filters, filters, kernel)
        self.conv3 = _conv1xk(filters, half, kernel)
        self.conv4 = _conv1xk(filters, half, kernel)
        self.head = nn.Sequential(
            nn.Linear(2 * filters + 2 * half, dense[0]),
            nn.ReLU(inplace=True),
            nn.Linear(dense[0], dense[1]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout2),
            nn.Linear(dense[1], n_classes),
        )
        self.set_l2(self.conv1, l2_first)
        for conv in (self.conv2, self.conv3, self.conv4):
            self.set_l2(conv, l2_conv)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        c1 = self._first(spectrogram)
        c2 = torch.relu(self.conv2(c1))
        c3 = torch.relu(self.conv3(c2))
        c4 = torch.relu(self.conv4(c2))
        pooled = [c1.amax(-1), c2.mean(-1), c3.amax(-1), c4.mean(-1)]
        return self.head(torch.cat(pooled, dim=1))


class ResCat(_Seed004):
    """net2: conv1 (n_bins x 4, 256, valid) -> Dropout(0.2) -> conv2 (1x4, 256, same) -> conv3
    (1x4, 256, same); ``c1 + c2 + c3`` -> global max- and average-pool over time, concatenated
    (512) -> Dense 128 -> Dense 32 -> Dropout(0.1) -> Dense n_classes."""

    def __init__(
        self,
        n_bins: int,
        n_classes: int,
        filters: int,
        kernel: int,
        dense: tuple[int, int],
        dropout1: float,
        dropout2: float,
        l2_first: float,
        l2_conv: float,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(1, filters, (n_bins, kernel))
        self.drop1 = nn.Dropout(dropout1)
        self.conv2 = _conv1xk(filters, filters, kernel)
        self.conv3 = _conv1xk(filters, filters, kernel)
        self.head = nn.Sequential(
            nn.Linear(2 * filters, dense[0]),
            nn.ReLU(inplace=True),
            nn.Linear(dense[0], dense[1]),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout2),
            nn.Linear(dense[1], n_classes),
        )
        self.set_l2(self.conv1, l2_first)
        for conv in (self.conv2, self.conv3):
            self.set_l2(conv, l2_conv)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        c1 = self._first(spectrogram)
        c2 = torch.relu(self.conv2(c1))
        c3 = torch.relu(self.conv3(c2))
        s = c1 + c2 + c3
        return self.head(torch.cat([s.amax(-1), s.mean(-1)], dim=1))


def _common(input_shapes, filters, kernel, dense, dropout1, dropout2, l2_first, l2_conv):
    check_pos_int("filters", filters, 2)
    check_pos_int("kernel", kernel)
    if len(tuple(dense)) != 2:
        raise UsageError(f"dense must be two layer widths, got {dense!r}")
    dense = tuple(check_pos_int("dense", d) for d in dense)
    check_prob("dropout1", dropout1)
    check_prob("dropout2", dropout2)
    for name, v in (("l2_first", l2_first), ("l2_conv", l2_conv)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise UsageError(f"{name} must be a number >= 0, got {v!r}")
    _, n_bins = _check_input(input_shapes["spectrogram"], kernel)
    return n_bins, dense


#: The default recipe with more epochs: under it both Yang & Zhang networks were still at a
#: training loss of ~2.06 (22 % training accuracy) after the recipe's 30 epochs; with 90 their
#: groove-styles performer-disjoint 5-fold track balanced accuracy rose from 25.3 / 24.0 % to
#: 35.9 / 36.8 % (docs/training.md). Each epoch is cheap (~1 s per 1,000 3-s windows on one core).
SLOW_RECIPE = {"epochs": 90}


@MODELS.register(
    "dupconv",
    kind="torch",
    inputs=("spectrogram",),
    source=f"{YANG_ZHANG_2019.short} (net1)",
    features={"spectrogram": "mel"},
    train={"optimizer": "adadelta", "lr": 1.0, "batch_size": 50},
    recipe=SLOW_RECIPE,
    description="Duplicated 1x4 convs feeding max- and average-pooling, concatenated, dense 256-64 (net1).",
)
def dupconv(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    filters: int = 256,
    kernel: int = 4,
    dense: tuple[int, int] = (256, 64),
    dropout1: float = 0.2,
    dropout2: float = 0.1,
    l2_first: float = 0.02,
    l2_conv: float = 0.01,
) -> DupConv:
    """Yang & Zhang 2019, §3.1 net1 (see the module docstring for orientation, parameter count and L2).

    The paper's input is 256 mel x 128 frames (1024-sample frames, 50 % overlap, ~3 s).
    Silent in the paper, our choices: which of conv1/conv2 goes to max- vs average-pooling
    ("different kind of pooling layers": conv1 -> max, conv2 -> average, conv3 -> max, conv4 ->
    average); conv1's pooled output is taken after its dropout (the dropout layer directly follows
    conv1); no dropout elsewhere.
    """
    n_bins, dense = _common(input_shapes, filters, kernel, dense, dropout1, dropout2, l2_first, l2_conv)
    return keras_init(DupConv(n_bins, n_classes, filters, kernel, dense, dropout1, dropout2, l2_first, l2_conv))


@MODELS.register(
    "rescat",
    kind="torch",
    inputs=("spectrogram",),
    source=f"{YANG_ZHANG_2019.short} (net2)",
    features={"spectrogram": "mel"},
    train={"optimizer": "adadelta", "lr": 1.0, "batch_size": 50},
    recipe=SLOW_RECIPE,
    description="Residual-style sum of three conv outputs, global max+avg pooling, dense 128-32 (net2).",
)
def rescat(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    filters: int = 256,
    kernel: int = 4,
    dense: tuple[int, int] = (128, 32),
    dropout1: float = 0.2,
    dropout2: float = 0.1,
    l2_first: float = 0.02,
    l2_conv: float = 0.01,
) -> ResCat:
    """Yang & Zhang 2019, §3.2 net2, the contrastive residual network (see module docstring).

    §3.2 says net2 is "similar to net1": the third conv has the parameters of net1's two
    duplicated convs (256 kernels of 1x4), the three outputs are added, then max- and
    average-pooling over the entire time axis, dense 128-32-classes. Silent, our choices (taken
    from net1): dropout 0.2 after conv1 and 0.1 before the last dense layer, L2 0.02 / 0.01,
    convs chained conv1 -> conv2 -> conv3.
    """
    n_bins, dense = _common(input_shapes, filters, kernel, dense, dropout1, dropout2, l2_first, l2_conv)
    return keras_init(ResCat(n_bins, n_classes, filters, kernel, dense, dropout1, dropout2, l2_first, l2_conv))
