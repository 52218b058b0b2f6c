"""Recurrent models over spectrogram time steps: ``bigru`` and ``res-bigru`` (F. Zhang 2022), ``lstm`` (Schrader et al. 2021).

Slot ``spectrogram``: ``(batch, n_frames, n_bins)`` is already a sequence of ``n_frames`` steps
of ``n_bins`` features (MFCC coefficients, mel bins, ...); any length >= 1 works.
"""

from __future__ import annotations

import torch
from torch import nn

from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, check_pos_int, check_prob, keras_init
from genre_cli.models.resnet import ResNet18
from genre_cli.papers import SCHRADER_2021, ZHANG_2022


class BiGRU(GenreModule):
    """Stacked bidirectional GRU; ``embed`` = last layer's final forward and backward states
    concatenated (``2 * hidden``); then dropout and a linear classifier."""

    slots = ("spectrogram",)

    def __init__(self, n_bins: int, n_classes: int | None, hidden: int = 128, layers: int = 2, dropout: float = 0.3):
        super().__init__()
        self.gru = nn.GRU(n_bins, hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.out_features = 2 * hidden
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, n_classes)) if n_classes else None

    def embed(self, spectrogram: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(spectrogram)  # h: (layers * 2, batch, hidden); last two = last layer fwd, bwd
        return torch.cat([h[-2], h[-1]], dim=1)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(spectrogram))


@MODELS.register(
    "bigru",
    kind="torch",
    inputs=("spectrogram",),
    source=ZHANG_2022.short,
    features={"spectrogram": "mel"},
    description="Bidirectional GRU over spectrogram frames, final states -> dense.",
)
def bigru(*, n_classes: int, input_shapes: dict[str, tuple[int, ...]], hidden: int = 128, layers: int = 2, dropout: float = 0.3) -> BiGRU:
    """F. Zhang 2022: a Bi-GRU treats the spectrogram as a time sequence ("from left to right of the
    spectrogram"), 0.78 on mel. The slides give no sizes; ours: 2 layers of 128 units per
    direction, dropout 0.3 between layers and before the classifier, final hidden states of both
    directions as the clip embedding."""
    check_pos_int("hidden", hidden)
    check_pos_int("layers", layers)
    check_prob("dropout", dropout)
    return BiGRU(input_shapes["spectrogram"][1], n_classes, hidden, layers, dropout)


class LSTMNet(GenreModule):
    """Stacked LSTM (last time step of the last layer) -> Dense(64, ReLU) -> Dropout -> Dense."""

    slots = ("spectrogram",)

    def __init__(self, n_bins: int, n_classes: int, units: int, layers: int, dense: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(n_bins, units, num_layers=layers, batch_first=True)
        self.head = nn.Sequential(nn.Linear(units, dense), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(dense, n_classes))

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(spectrogram)
        return self.head(h[-1])


@MODELS.register(
    "lstm",
    kind="torch",
    inputs=("spectrogram",),
    source=SCHRADER_2021.short,
    features={"spectrogram": "mfcc_frames"},
    train={"lr": 1e-3, "batch_size": 32, "epochs": 30},  # §4.2: "learning rate was 0.001, batch size was 32, and 30 epochs"
    description="Three LSTM layers of 64 units on MFCC sequences, dense 64 ReLU, dropout 0.3, dense.",
)
def lstm(
    *, n_classes: int, input_shapes: dict[str, tuple[int, ...]], units: int = 64, layers: int = 3, dense: int = 64, dropout: float = 0.3
) -> LSTMNet:
    """Schrader et al. 2021, §4.2 final model: three LSTM layers (tanh, sigmoid recurrent activation — PyTorch's
    LSTM cell) of 64 units, Dense(64, ReLU), Dropout(0.3), softmax Dense (we return logits); input
    30 MFCCs x 30 segments (baseline: 2 layers, 20 x 10). ``layers=2`` gives the baseline.

    Keras' last LSTM has ``return_sequences=False``: we classify from the last layer's final
    hidden state. No dropout between LSTM layers (none in the paper). The weights start from
    Keras' default initialisation (:func:`~genre_cli.models.base.keras_init`: orthogonal
    recurrent kernels, forget-gate bias 1), the paper's framework; from PyTorch's defaults this
    net learned so slowly that early stopping ended it near chance.
    """
    check_pos_int("units", units)
    check_pos_int("layers", layers)
    check_pos_int("dense", dense)
    check_prob("dropout", dropout)
    return keras_init(LSTMNet(input_shapes["spectrogram"][1], n_classes, units, layers, dense, dropout))


class ResBiGRU(GenreModule):
    """Parallel hybrid: a :class:`ResNet18` branch (spatial) and a :class:`BiGRU` branch (temporal)
    read the same spectrogram; their embeddings (512 + 2*hidden) are concatenated, dropout,
    linear classifier."""

    slots = ("spectrogram",)

    def __init__(self, resnet: ResNet18, gru: BiGRU, n_classes: int, dropout: float):
        super().__init__()
        self.resnet = resnet
        self.gru = gru
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(resnet.out_features + gru.out_features, n_classes))

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([self.resnet.embed(spectrogram), self.gru.embed(spectrogram)], dim=1))


@MODELS.register(
    "res-bigru",
    kind="torch",
    inputs=("spectrogram",),
    source=ZHANG_2022.short,
    features={"spectrogram": "mel"},
    description="Parallel ResNet-18 / Bi-GRU hybrid: both branches' embeddings concatenated -> dense.",
)
def res_bigru(
    *, n_classes: int, input_shapes: dict[str, tuple[int, ...]], width: int = 64, hidden: int = 128, layers: int = 2, dropout: float = 0.3
) -> ResBiGRU:
    """F. Zhang's (2022) proposed "Parallel Bi-GRU/ResNet Hybrid" (0.90 on mel). The slides show no
    fusion details; ours: the two branches are exactly ``resnet18`` and ``bigru`` without their
    classifiers, run in parallel on the same input; embeddings concatenated (512 + 256),
    Dropout(0.3), one linear layer."""
    check_pos_int("width", width)
    check_pos_int("hidden", hidden)
    check_pos_int("layers", layers)
    check_prob("dropout", dropout)
    return ResBiGRU(ResNet18(None, width), BiGRU(input_shapes["spectrogram"][1], None, hidden, layers, dropout), n_classes, dropout)
