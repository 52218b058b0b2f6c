"""ResNet-18 (He et al. 2016) for one-channel spectrogram images — F. Zhang 2022. No torchvision."""

from __future__ import annotations

import torch
from torch import nn

from genre_cli.models import MODELS
from genre_cli.models.base import GenreModule, check_pos_int, check_prob, to_image
from genre_cli.papers import ZHANG_2022


class BasicBlock(nn.Module):
    """``conv3x3-BN-ReLU-conv3x3-BN`` + identity (or 1x1-conv/BN projection), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.down = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet18(GenreModule):
    """Standard ResNet-18 layout (torchvision's ``resnet18`` with ``in_channels=1``).

    Stem 7x7/2 conv (64) + BN + ReLU + 3x3/2 max-pool, four stages of two BasicBlocks
    ([2, 2, 2, 2]) with 64/128/256/512 channels (stride 2 from stage 2), global average pooling,
    linear classifier. Works for any input size >= 1x1 (strided convs / pools with padding never
    reach 0; global pooling removes the size dependence). ``embed`` returns the pooled features
    (``width * 8`` = 512), which :mod:`recurrent` reuses as the CNN branch of ``res-bigru``.
    """

    slots = ("spectrogram",)

    def __init__(self, n_classes: int | None, width: int = 64, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        stages, c = [], width
        for i, blocks in enumerate((2, 2, 2, 2)):
            c_out = width * 2**i
            stages.append(
                nn.Sequential(*[BasicBlock(c if b == 0 else c_out, c_out, 2 if (i > 0 and b == 0) else 1) for b in range(blocks)])
            )
            c = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, n_classes)) if n_classes else None

    def embed(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(to_image(spectrogram)))).flatten(1)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(spectrogram))


@MODELS.register(
    "resnet18",
    kind="torch",
    inputs=("spectrogram",),
    source=ZHANG_2022.short,
    features={"spectrogram": "mel"},
    description="ResNet-18 (BasicBlock, [2,2,2,2]) on the one-channel mel spectrogram image.",
)
def resnet18(*, n_classes: int, input_shapes: dict[str, tuple[int, ...]], width: int = 64, dropout: float = 0.0) -> ResNet18:
    """F. Zhang 2022: ResNet-18 as a feature extractor on mel spectrograms (128 mel, 3 s clips, 0.87).

    The slides give no details beyond "ResNet18"; we use the standard architecture from scratch
    (no ImageNet weights: torchvision is not available, and the input has one channel) with a
    1-channel stem. ``width`` (64 = standard) scales all channel counts; ``dropout`` before the
    classifier is 0 (standard ResNet). Input shape only needs to be >= 1x1.
    """
    check_pos_int("width", width)
    check_prob("dropout", dropout)
    return ResNet18(n_classes, width, dropout)
