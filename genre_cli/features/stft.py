"""The ``stft`` frontend: one STFT per chunk of segments, everything spectral derived from it.

The complex STFT ``X`` (Hann window, ``center=True``, zero padding: exactly ``librosa.stft``
with its defaults, tested to float tolerance) is computed once per chunk, time-major
``(n, n_frames, n_fft//2+1)``, in complex64. Power, magnitude, mel power (``|X|^2 @ melfb.T``),
log-mel, MFCC (DCT-II of log-mel), spectral centroid/bandwidth/rolloff and the zero-crossing
rate are computed on first use and shared by every feature kind of the chunk.
"""

from __future__ import annotations

import math

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.features import filters, spectral
from genre_cli.features.kind import Frontend, register_frontend


def n_frames(n_samples: int, cfg) -> int:
    """Number of STFT frames of a segment of ``n_samples`` (``center=True``, as librosa)."""
    pad = cfg.n_fft // 2
    return 1 + (n_samples + 2 * pad - cfg.n_fft) // cfg.hop_length


def check_length(cfg, n_samples: int) -> int:
    """Raise ``UsageError`` for segments shorter than ``n_fft``; the number of frames otherwise."""
    if n_samples < cfg.n_fft:
        raise UsageError(
            f"segments of {n_samples} samples are shorter than n_fft={cfg.n_fft}",
            hint="use longer segments or a smaller n_fft",
        )
    return n_frames(n_samples, cfg)


def check_delta_length(cfg, n_samples: int, t: int) -> None:
    """Deltas (``librosa.feature.delta``, width 9) need at least 9 frames."""
    if t < spectral.DELTA_WIDTH:
        raise UsageError(
            f"deltas need at least {spectral.DELTA_WIDTH} frames; segments of {n_samples} samples give {t}",
            hint=f"use segments of at least {(spectral.DELTA_WIDTH - 1) * cfg.hop_length} samples",
        )


def check_mfcc_mels(cfg, feature: str) -> None:
    """The ``mfcc_mels`` bands MFCCs are computed from must fit the STFT's ``n_fft//2+1`` bins;
    checked by each feature that computes MFCCs (``feature``: its flag), only when selected."""
    n_bins = cfg.n_fft // 2 + 1
    if cfg.mfcc_mels > n_bins:
        raise UsageError(
            f"{feature} computes MFCCs from {cfg.mfcc_mels} mel bands, more than the {n_bins} frequency bins of --n-fft {cfg.n_fft}",
            hint=f"use --n-fft {2 ** math.ceil(math.log2(2 * (cfg.mfcc_mels - 1)))} or more, or --mfcc-mels {n_bins} or fewer",
        )


class StftChunk:
    """Lazily computed, shared intermediate results for one chunk of segments."""

    def __init__(self, y: np.ndarray, cfg, kinds, workers: int = 1):
        self.y = y
        self.cfg = cfg
        # (n, t, F) complex64; float64 FFT when vector statistics are asked for (see spectral.stft)
        self.spec = spectral.stft(y, cfg.n_fft, cfg.hop_length, workers, precise=any(k.precise for k in kinds))
        self._power: np.ndarray | None = None
        self._mag: np.ndarray | None = None
        self._mel: dict[tuple, np.ndarray] = {}
        self._logmel: dict[tuple, np.ndarray] = {}
        self._shape: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._zcr: np.ndarray | None = None

    @property
    def power(self) -> np.ndarray:
        if self._power is None:
            self._power = spectral.power(self.spec)
        return self._power

    @property
    def mag(self) -> np.ndarray:
        if self._mag is None:
            self._mag = np.sqrt(self.power)
        return self._mag

    def mel(self, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
        """Mel power ``(n, t, n_mels)`` float32."""
        key = (n_mels, fmin, fmax)
        if key not in self._mel:
            p = self.power
            n, t, f = p.shape
            mel = spectral.mel_power(p.reshape(-1, f), self.cfg.sr, self.cfg.n_fft, n_mels, fmin, fmax)
            self._mel[key] = mel.reshape(n, t, n_mels)
        return self._mel[key]

    def logmel(self, n_mels: int, fmin: float, fmax: float | None, top_db: float | None) -> np.ndarray:
        key = (n_mels, fmin, fmax, top_db)
        if key not in self._logmel:
            self._logmel[key] = spectral.to_db(self.mel(n_mels, fmin, fmax), top_db)
        return self._logmel[key]

    def mfcc(self, n_mfcc: int, n_mels: int, fmin: float, fmax: float | None, top_db: float | None) -> np.ndarray:
        """MFCC ``(n, t, n_mfcc)`` float32 (``librosa.feature.mfcc``: DCT-II ortho of log-mel)."""
        lm = self.logmel(n_mels, fmin, fmax, top_db)
        n, t, m = lm.shape
        return (lm.reshape(-1, m) @ filters.dct_t(m, n_mfcc)).reshape(n, t, n_mfcc)

    @property
    def shape(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spectral centroid, bandwidth and rolloff ``(n, t)`` each."""
        if self._shape is None:
            self._shape = spectral.spectral_shape(self.mag, self.cfg.sr, self.cfg.n_fft)
        return self._shape

    @property
    def zcr(self) -> np.ndarray:
        if self._zcr is None:
            self._zcr = spectral.zcr(self.y, self.cfg.n_fft, self.cfg.hop_length)
        return self._zcr


STFT = register_frontend(Frontend("stft", make=StftChunk, check_length=check_length))
