"""Batched spectral primitives: each reproduces a librosa function on a batch of segments.

Arrays are time-major: a batch of ``n`` segments of ``t`` frames and ``F = n_fft // 2 + 1``
bins is ``(n, t, F)``. Every value of segment ``i`` depends on segment ``i`` only (per-segment
dB floors and tuning estimates), so a batch equals its stacked segments. Filter banks come from
:mod:`genre_cli.features.filters`; tests compare each function with librosa's
(``tests/test_features.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from genre_cli.features import filters

__all__ = [
    "AMIN",
    "DELTA_WIDTH",
    "stft",
    "power",
    "to_db",
    "mel_power",
    "zcr",
    "rms",
    "spectral_shape",
    "contrast",
    "chroma",
    "delta",
    "stats",
]

#: Power floor of the dB conversion (-100 dB).
AMIN = 1e-10
#: Frames of the delta operator (``librosa.feature.delta``'s default width).
DELTA_WIDTH = 9
_DB_PER_NEPER = np.float32(10.0 / math.log(10.0))  # 10 log10(x) = _DB_PER_NEPER * ln(x)


def stft(y: np.ndarray, n_fft: int, hop: int, workers: int = 1, *, precise: bool = False) -> np.ndarray:
    """Complex STFT of a batch, time-major.

    Parameters
    ----------
    y : np.ndarray [shape=(n, n_samples)]
        Mono segments.
    n_fft, hop : int
        Frame length and hop in samples (Hann window, ``center=True``, zero padding).
    workers : int
        FFT threads.
    precise : bool
        ``False``: float32 frames and FFT (about half the cost of librosa's float64 FFT); the
        error is ~1e-7 of the frame's *peak* bin, so bins 140 dB below the peak are noise.
        ``True``: float64 frames and FFT rounded to complex64, as librosa does; each bin is
        then exact to its own float32 rounding. The vector statistics use it: spectral
        contrast's valley (mean of a band's smallest bins) can sit 150 dB below the frame
        peak in lossy-coded audio (near-empty bins above the codec's low-pass).

    Returns
    -------
    np.ndarray [shape=(n, 1 + n_samples // hop, n_fft // 2 + 1), dtype=complex64]
        ``librosa.stft(y, n_fft=n_fft, hop_length=hop)`` with the last two axes swapped.
    """
    import scipy.fft

    pad = n_fft // 2
    yp = np.pad(y.astype(np.float64) if precise else y, ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft, axis=-1)[:, ::hop]
    x = frames * filters.hann(n_fft, np.float64 if precise else np.float32)
    spec = scipy.fft.rfft(x, axis=-1, workers=workers)
    return spec.astype(np.complex64, copy=False)


def power(spec: np.ndarray) -> np.ndarray:
    """``|X|^2`` of a complex64 spectrogram, float32, same shape."""
    p = np.square(spec.real)
    p += np.square(spec.imag)
    return p


def to_db(p: np.ndarray, top_db: float | None, *, out: np.ndarray | None = None) -> np.ndarray:
    """``10 log10(max(p, 1e-10))`` with an optional per-segment floor ``max - top_db``.

    Parameters
    ----------
    p : np.ndarray [shape=(n, ...), dtype=float32]
        Power.
    top_db : float > 0 or None
        Floor each segment at its maximum minus ``top_db`` (``None``: no floor).
    out : np.ndarray or None
        Destination (may be ``p`` itself).

    Returns
    -------
    np.ndarray
        dB re 1.0, in [-100, +inf); per segment ``i`` equal to ``librosa.power_to_db(p[i],
        ref=1.0, amin=1e-10, top_db=top_db)``.
    """
    # as -100 + 10 log10(max(p, amin) / amin): numpy's float32 log is vectorised, log10 is
    # not (~4x slower), and the floor stays exactly -100 dB (ln 1 = 0)
    o = np.maximum(p, AMIN, out=out)
    o *= np.float32(1.0 / AMIN)
    np.log(o, out=o)
    o *= _DB_PER_NEPER
    o += np.float32(10.0 * math.log10(AMIN))
    if top_db is not None:
        mx = o.reshape(o.shape[0], -1).max(axis=1)
        np.maximum(o, (mx - top_db).reshape((-1,) + (1,) * (o.ndim - 1)), out=o)
    return o


def mel_power(p: np.ndarray, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Mel power ``(N, n_mels)`` float32 of a power spectrogram ``p`` ``(N, n_fft // 2 + 1)``
    (``p @ filters.mel_t(...)``, computed band group by band group: :func:`filters.mel_bands`)."""
    out = np.empty((p.shape[0], n_mels), dtype=np.float32)
    for lo, hi, m0, m1, block in filters.mel_bands(sr, n_fft, n_mels, fmin, fmax):
        out[:, m0:m1] = p[:, lo:hi] @ block
    return out


def zcr(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Zero-crossing rate ``(n, n_frames)`` float32, in crossings per sample ([0, 1]).

    Equals ``librosa.feature.zero_crossing_rate(y, frame_length=frame_length,
    hop_length=hop)[..., 0, :]`` (edge padding, ``|y| <= 1e-10`` counts as zero, zero is
    positive), computed from a cumulative sum of sample-to-sample sign changes instead of
    re-examining every overlapping frame.
    """
    pad = frame_length // 2
    yp = np.pad(y, ((0, 0), (pad, pad)), mode="edge")
    neg = np.signbit(yp) & (np.abs(yp) > 1e-10)
    change = neg[:, 1:] != neg[:, :-1]
    cs = np.zeros(yp.shape, dtype=np.int32)
    np.cumsum(change, axis=1, out=cs[:, 1:])
    t = 1 + (yp.shape[1] - frame_length) // hop
    starts = np.arange(t) * hop
    counts = cs[:, starts + frame_length - 1] - cs[:, starts]
    return (counts / frame_length).astype(np.float32)


def rms(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """RMS ``(n, n_frames)`` float32 (``librosa.feature.rms(y=...)``, zero padding; imports librosa)."""
    import librosa

    return librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop)[:, 0, :]


def spectral_shape(mag: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid, bandwidth (p=2) and 85 % rolloff of a magnitude spectrogram.

    Parameters
    ----------
    mag : np.ndarray [shape=(n, t, F), dtype=float32]

    Returns
    -------
    centroid, bandwidth, rolloff : np.ndarray [shape=(n, t), dtype=float64]
        In Hz, equal to ``librosa.feature.spectral_centroid / spectral_bandwidth /
        spectral_rolloff`` with ``S=mag``. All-zero frames give 0 for each (as librosa).
    """
    n, t, f = mag.shape
    mom = mag.reshape(-1, f).astype(np.float64) @ filters.frequency_moments(sr, n_fft)  # (n*t, 3)
    s0 = mom[:, 0]
    ok = s0 >= np.finfo(np.float32).tiny
    s0 = np.where(ok, s0, 1.0)
    centroid = np.where(ok, mom[:, 1] / s0, 0.0)
    bw2 = np.where(ok, mom[:, 2] / s0 - centroid**2, 0.0)
    bandwidth = np.sqrt(np.maximum(bw2, 0.0))
    cum = np.cumsum(mag, axis=-1)
    thr = 0.85 * cum[..., -1:]
    idx = np.argmax(cum >= thr, axis=-1)
    rolloff = filters.fft_frequencies(sr, n_fft)[idx]
    return centroid.reshape(n, t), bandwidth.reshape(n, t), rolloff


def contrast(mag: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Spectral contrast ``(n, 7, t)`` float64 in dB, per segment equal to
    ``librosa.feature.spectral_contrast(S=mag[i].T, sr=sr, n_fft=n_fft)``.

    Bands are sorted along the contiguous frequency axis of the time-major layout
    (librosa sorts along the strided one); single-bin quantiles use min/max.
    As in librosa, peak and valley go through ``power_to_db`` with its default
    ``top_db=80`` floor, taken per segment here.

    Precision: on the same ``mag`` this equals librosa to rounding. ``mag`` must come from the
    ``precise`` :func:`stft` (float64 FFT, as librosa's): with the float32 FFT (error ~1e-7 of
    the frame's peak) a band whose smallest bins are near-empty (the top band above a lossy
    codec's low-pass) has its valley at that error level, and the band's contrast differs
    from ``spectral_contrast(y=...)`` by up to a few dB in those frames.
    """
    bands = filters.contrast_bands(sr, n_fft)
    n, t, _ = mag.shape
    valley = np.empty((n, len(bands), t))
    peak = np.empty((n, len(bands), t))
    for k, (a, b, q) in enumerate(bands):
        sub = mag[:, :, a:b]
        if q == 1:
            valley[:, k] = sub.min(axis=-1)
            peak[:, k] = sub.max(axis=-1)
        else:  # numpy's SIMD sort along the contiguous axis beats a two-sided partition
            srt = np.sort(sub, axis=-1)
            valley[:, k] = srt[..., :q].mean(axis=-1)
            peak[:, k] = srt[..., -q:].mean(axis=-1)
    return to_db(peak, 80.0) - to_db(valley, 80.0)


def chroma(power_: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Chroma ``(n, t, 12)`` float32 in [0, 1], per segment equal to
    ``librosa.feature.chroma_stft(S=power_[i].T, sr=sr)`` (tuning estimated per segment;
    imports librosa)."""
    import librosa

    out = np.empty(power_.shape[:2] + (12,), dtype=np.float32)
    for i in range(power_.shape[0]):
        pt = power_[i].T
        if np.any(pt):
            tuning = float(librosa.estimate_tuning(S=pt, sr=sr, n_fft=n_fft, bins_per_octave=12))
        else:
            tuning = 0.0
        np.matmul(power_[i], filters.chroma_t(sr, n_fft, round(tuning, 6)), out=out[i])
    norm = out.max(axis=-1, keepdims=True)
    norm[norm < np.finfo(np.float32).tiny] = 1.0
    out /= norm
    return out


def delta(x: np.ndarray, order: int = 1) -> np.ndarray:
    """``librosa.feature.delta(x, width=9, order=order, axis=1)`` of ``(n, t, c)``, float32.

    Linear in ``x``: interior frames by a 9-tap correlation, the first/last 4 frames by
    the cached edge operators (:func:`filters.delta_kernels`). Needs ``t >= 9``.
    """
    w = DELTA_WIDTH
    taps, head, tail = filters.delta_kernels(w, order)
    t = x.shape[1]
    half = w // 2
    out = np.zeros(x.shape, dtype=np.float32)
    inner = out[:, half : t - half]
    for k in range(w):
        inner += np.float32(taps[k]) * x[:, k : t - w + 1 + k]
    out[:, :half] = np.einsum("hw,nwc->nhc", head, x[:, :w])
    out[:, t - half :] = np.einsum("hw,nwc->nhc", tail, x[:, t - w :])
    return out


def stats(x: np.ndarray, funcs: tuple[str, ...], axis: tuple[int, ...] | int) -> list[np.ndarray]:
    """``[mean, median, std, var ...]`` of ``x`` (float64) along ``axis``, as named in ``funcs``
    (population std and var, numpy's default)."""
    x = np.asarray(x, dtype=np.float64)
    table: dict[str, Callable[..., np.ndarray]] = {
        "mean": np.mean,
        "median": np.median,
        "std": np.std,
        "var": np.var,
    }
    return [table[f](x, axis=axis) for f in funcs]
