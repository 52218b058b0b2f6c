"""Feature extraction (placeholder until the features library lands: mel only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from genre_cli.errors import UsageError


@dataclass(frozen=True)
class FeatureConfig:
    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    mel: int = 0
    fmin: float = 0.0
    fmax: float | None = None
    mfcc: int = 0

    def to_params(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, d: dict) -> "FeatureConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def names(self) -> list[str]:
        out = [n for n, on in (("mel", self.mel), ("mfcc", self.mfcc)) if on]
        if not out:
            raise UsageError("no feature selected")
        return out


def compute(y: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    import librosa

    out = {}
    S = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length)) ** 2
    if cfg.mel:
        M = librosa.feature.melspectrogram(S=S, sr=cfg.sr, n_mels=cfg.mel, fmin=cfg.fmin, fmax=cfg.fmax)
        out["mel"] = np.swapaxes(librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=None), -1, -2).astype(np.float32)
    if cfg.mfcc:
        M = librosa.feature.melspectrogram(S=S, sr=cfg.sr)
        mf = librosa.feature.mfcc(S=librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=None), n_mfcc=cfg.mfcc)
        out["mfcc"] = np.swapaxes(mf, -1, -2).astype(np.float32)
    return out


def column_names(name: str, cfg: FeatureConfig):
    return None


def output_shape(name: str, cfg: FeatureConfig, n_samples: int) -> tuple[int, ...]:
    frames = 1 + n_samples // cfg.hop_length
    return (frames, cfg.mel if name == "mel" else cfg.mfcc)
