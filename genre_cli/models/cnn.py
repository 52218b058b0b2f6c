"""2-D CNNs on spectrogram images: ``cnn3`` (Verma et al. 2022), ``cnn6`` (Schrader et al. 2021), ``cnn-mlp`` (Pun & Nazirkhanova 2020).

All take slot ``spectrogram`` ``(batch, n_frames, n_bins)`` and view it as a one-channel image
``(batch, 1, n_bins, n_frames)`` (:func:`~genre_cli.models.base.to_image`).

Small inputs: every 2x2 max-pool uses ``ceil_mode=True``, so a side of length 1 stays 1 instead of
collapsing to 0 (``ceil((1-2)/2)+1 = 1``) and odd sides round up. The flatten size before the
dense layers is computed at build time by a dry run on ``input_shapes``; build the model with the
shape you will feed (any size >= 1 x 1 works).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, check_ints, check_pos_int, check_prob, flat_size, keras_init, to_image
from genre_cli.models.mlp import dense_stack
from genre_cli.papers import PUN_2020, SCHRADER_2021, VERMA_2022


def pool2() -> nn.MaxPool2d:
    """2x2 / stride-2 max-pool that never shrinks a side below 1 (ceil_mode)."""
    return nn.MaxPool2d(2, 2, ceil_mode=True)


def conv_bn_relu(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    """``Conv(k x k, 'same') -> BatchNorm -> ReLU`` (the conv has no bias: BN's shift replaces it).

    'same' padding is the conv's own zero padding for odd ``k`` (no padded copy of the activations:
    a separate ``ZeroPad2d`` cost ~15 % of a CPU training step of ``cnn6``); an even ``k`` needs
    Keras' asymmetric pad (one more on the right/bottom) and keeps a ``ZeroPad2d``. The slot
    before the conv is an ``Identity`` when unused, so state-dict keys are the same either way.
    """
    if k % 2:
        pad: nn.Module = nn.Identity()
        conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    else:
        pad = nn.ZeroPad2d((((k - 1) // 2), k // 2, (k - 1) // 2, k // 2))  # Keras 'same' for even k
        conv = nn.Conv2d(c_in, c_out, k, bias=False)
    return [pad, conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ImageCNN(GenreModule):
    """``features`` (conv stack on the 1-channel image) -> flatten -> ``head`` (dense, logits)."""

    slots = ("spectrogram",)

    def __init__(self, features: nn.Module, head_fn, input_shape: tuple[int, int]):
        super().__init__()
        self.features = features
        self.n_flat = flat_size(nn.Sequential(_ToImage(), features), input_shape)
        self.head = head_fn(self.n_flat)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(to_image(spectrogram)).flatten(1))


class _ToImage(nn.Module):
    def forward(self, x):
        return to_image(x)


@MODELS.register(
    "cnn6",
    kind="torch",
    inputs=("spectrogram",),
    source=SCHRADER_2021.short,
    features={"spectrogram": "mel"},
    train={"lr": 1e-3, "batch_size": 100, "epochs": 15},  # §4.1: "15 epochs with a learning rate of 0.001 and batch size of 100"
    description="Six conv-BN-ReLU-maxpool groups (8..256 filters), flatten, dropout 0.3, dense.",
)
def cnn6(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    filters: tuple[int, ...] = (8, 16, 32, 64, 128, 256),
    kernel: int = 3,
    dropout: float = 0.3,
) -> ImageCNN:
    """Schrader et al. 2021, §4.1: groups of "a convolutional layer, batch normalization, relu activation layer
    and a max pooling layer" with 8, 16, 32, 64, 128 and 256 filters, then flatten, 30 % dropout
    and a softmax dense layer (we return logits).

    Silent in the paper, our choices: 3x3 kernels with 'same' padding, 2x2 max-pooling with
    ``ceil_mode=True`` (small inputs: a side of 1 stays 1 — 6 pools need no minimum size), conv
    without bias (BatchNorm follows). The paper fed 360x360 / 216x216 spectrogram images.
    """
    filters = check_ints("filters", filters)
    check_pos_int("kernel", kernel)
    check_prob("dropout", dropout)
    layers: list[nn.Module] = []
    c = 1
    for f in filters:
        layers += conv_bn_relu(c, f, kernel) + [pool2()]
        c = f
    head = lambda n: nn.Sequential(nn.Dropout(dropout), nn.Linear(n, n_classes))  # noqa: E731
    return ImageCNN(nn.Sequential(*layers), head, input_shapes["spectrogram"])


@MODELS.register(
    "cnn3",
    kind="torch",
    inputs=("spectrogram",),
    source=VERMA_2022.short,
    features={"spectrogram": "mel"},
    train={"optimizer": "adam"},  # §4: "We chose to use Adam optimization"
    description="Three conv blocks (first 4x4) with max-pooling and regularisation, three dense layers.",
)
def cnn3(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    filters: tuple[int, int, int] = (32, 64, 64),
    dense: tuple[int, int] = (128, 64),
    conv_dropout: float = 0.0,
    dropout: float = 0.0,
) -> ImageCNN:
    """Verma et al. 2022, §3.3: "3 convolution layers, each with its own max pool and regularization, feeding
    into 3 fully connected layers with ReLU activation, softmax output"; first window 4x4 (§4);
    batch normalisation, dropout and L2 were tried (§4) — they "accepted the overfitting".

    Silent in the paper (figure 2 not in the text), our choices: filters 32, 64, 64; kernels 4x4
    then 3x3, 'same' padding; "regularization" per block = BatchNorm after the conv, 2x2 max-pool
    (ceil_mode); the three dense layers are 128-ReLU, 64-ReLU and the output layer; no dropout
    and no L2 by default — the paper tried both and "accepted the overfitting" — and weights
    from Keras' default initialisation (the paper's framework). ``conv_dropout`` (after each
    pool) and ``dropout`` (after each hidden dense layer) add dropout: with 0.2 / 0.3 the
    network fit 512 training windows to 25 % in 10 epochs instead of 96 % without, and ended near
    chance in short training runs.
    """
    filters = check_ints("filters", filters)
    dense = check_ints("dense", dense)
    check_prob("conv_dropout", conv_dropout)
    check_prob("dropout", dropout)
    layers: list[nn.Module] = []
    c = 1
    for i, f in enumerate(filters):
        layers += conv_bn_relu(c, f, 4 if i == 0 else 3) + [pool2(), nn.Dropout(conv_dropout)]
        c = f
    head = lambda n: nn.Sequential(dense_stack(n, dense, dropout), nn.Linear(dense[-1], n_classes))  # noqa: E731
    return keras_init(ImageCNN(nn.Sequential(*layers), head, input_shapes["spectrogram"]))


class ResBlock(nn.Module):
    """Two 3x3 'same' convs with ReLU after each and a ResNet-style skip (1x1 projection when the
    channel count changes): ``relu(conv2(relu(conv1(x))) + skip(x))``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv1(x))
        return self.relu(self.conv2(y) + self.skip(x))


class CNNMLP(GenreModule):
    """Pun & Nazirkhanova's (2020) hybrid: CNN branch (slot ``spectrogram``) + MLP branch (slot ``vector``).

    ``model(spectrogram=mel, vector=handcrafted)``: mel ``(batch, n_frames, n_bins)``, hand-crafted
    features ``(batch, d)`` (93 in the paper). Each branch ends in ``branch_out`` (100) features;
    they are concatenated, go through one hidden layer and a linear output (logits).
    """

    slots = ("spectrogram", "vector")

    def __init__(self, spec_shape, d_vec, n_classes, base_filters, n_stages, mlp_widths, branch_out, hidden, dropout):
        super().__init__()
        blocks: list[nn.Module] = []
        c = 1
        for s in range(n_stages):
            f = base_filters * 2**s  # VGG pattern: filters double after every pool
            blocks += [ResBlock(c, f), pool2()]
            c = f
        self.cnn = nn.Sequential(*blocks)
        n_flat = flat_size(nn.Sequential(_ToImage(), self.cnn), spec_shape)
        self.cnn_fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_flat, branch_out), nn.ReLU(inplace=True))
        self.mlp = dense_stack(d_vec, (*mlp_widths, branch_out), dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * branch_out, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def forward(self, spectrogram: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        a = self.cnn_fc(self.cnn(to_image(spectrogram)).flatten(1))
        b = self.mlp(vector.flatten(1))
        return self.head(torch.cat([a, b], dim=1))


@MODELS.register(
    "cnn-mlp",
    kind="torch",
    inputs=("spectrogram", "vector"),
    source=PUN_2020.short,
    features={"spectrogram": "mel", "vector": "handcrafted"},
    description="Hybrid: residual CNN on the mel spectrogram + MLP on hand-crafted features, 100+100 -> hidden -> classes.",
)
def cnn_mlp(
    *,
    n_classes: int,
    input_shapes: dict[str, tuple[int, ...]],
    base_filters: int = 16,
    n_stages: int = 3,
    mlp_widths: tuple[int, ...] = (512, 256, 128),
    branch_out: int = 100,
    hidden: int = 100,
    dropout: float = 0.3,
) -> CNNMLP:
    """Pun & Nazirkhanova 2020, §4.3/§6.3: 3x3 stride-1 'same' convs with ReLU after each, a ResNet-style skip,
    2x2/stride-2 pooling, filters doubling after every pool (VGG), FC layers with dropout + ReLU;
    the CNN and the MLP branch (like the §4.2 net) both output 100 features, concatenated, one
    hidden layer, softmax (we return logits).

    Silent in the paper (figure 3 not in the text), our choices: ``n_stages=3`` stages of one
    residual block (two convs + skip, 1x1 projection when channels change) followed by a max-pool
    (ceil_mode), filters 16-32-64; flatten -> dropout -> Linear(100) -> ReLU; MLP branch
    512-256-128-100 (four layers like §4.2); hidden layer 100; dropout 0.3 everywhere.
    """
    check_pos_int("base_filters", base_filters)
    check_pos_int("n_stages", n_stages)
    mlp_widths = check_ints("mlp_widths", mlp_widths) if mlp_widths else ()
    check_pos_int("branch_out", branch_out)
    check_pos_int("hidden", hidden)
    check_prob("dropout", dropout)
    d_vec = math.prod(input_shapes["vector"])
    return CNNMLP(input_shapes["spectrogram"], d_vec, n_classes, base_filters, n_stages, mlp_widths, branch_out, hidden, dropout)
