"""Model registry (placeholder until the model zoo lands: one small CNN)."""

from __future__ import annotations

from genre_cli.errors import UsageError
from genre_cli.registry import Registry

MODELS: Registry = Registry("model")


@MODELS.register("cnn6", kind="torch", inputs=("spectrogram",), source="seed 002", description="six conv blocks")
def cnn6(*, n_classes: int, input_shapes: dict, dropout: float = 0.3, **cfg):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 1
            for k in (8, 16, 32, 64, 128, 256):
                layers += [nn.Conv2d(c, k, 3, padding=1), nn.BatchNorm2d(k), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
                c = k
            self.body = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.LazyLinear(n_classes))
            with torch.no_grad():
                self.forward(spectrogram=torch.zeros(1, *input_shapes["spectrogram"]))

        def forward(self, spectrogram):
            return self.head(self.body(spectrogram.unsqueeze(1)))

    return Net()


def list_models() -> list[str]:
    return MODELS.names()


def model_info(name: str) -> dict:
    return MODELS.meta(name)


def build_model(name: str, *, n_classes: int, input_shapes: dict, **cfg):
    fn = MODELS.get(name)
    try:
        return fn(n_classes=n_classes, input_shapes=input_shapes, **cfg)
    except TypeError as exc:
        raise UsageError(f"bad configuration for model {name!r}: {exc}") from None
