"""Batched feature extraction: one STFT per batch, every representation derived from it.

:func:`compute` takes a batch of equal-length mono segments ``(n_segments, n_samples)``
and returns every output of a :class:`~genre_cli.features.config.FeatureConfig`.

Design
------
* **One STFT per batch.** The complex STFT ``X`` (Hann window, ``center=True``, zero
  padding: exactly ``librosa.stft`` with its defaults, tested to float tolerance) is
  computed once for the batch, time-major ``(n, n_frames, n_fft//2+1)``, in complex64.
  Mel power (``|X|^2 @ melfb.T``), log-STFT, MFCC (DCT-II of log-mel), spectral centroid,
  bandwidth, rolloff, contrast and chroma are all derived from it; only features that
  genuinely need something else recompute: zero-crossing rate (waveform), RMS
  (waveform, ``kaggle``), harmonic/percussive waveforms (HPSS of the *shared* STFT, then
  ``istft``) and tempo (onset envelope from the shared 128-band log-mel).
* **Same numbers as librosa.** Each derived quantity reproduces the corresponding
  ``librosa.feature.*(y=...)`` call on one segment (tests compare them), but in
  float32 with matrix products: the mel filterbanks, DCT matrices, chroma filterbanks and
  contrast band edges are built once per parameter set (``functools.lru_cache``).
* **Fixed dB reference.** dB values are ``10 log10(max(power, 1e-10))`` (librosa's
  ``power_to_db(ref=1.0, amin=1e-10)``), never ``ref=np.max``: the same audio gives the
  same numbers at predict time, and silence gives -100 dB rather than -inf.
* **Batching is invisible.** Every value of segment ``i`` depends on segment ``i`` only
  (per-segment ``top_db`` floors, per-segment tuning estimates for chroma), so the
  result of a batch equals the stacked per-segment results. Internally the batch is
  processed in chunks of a few MB of spectrogram to stay cache friendly.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable

import numpy as np

from genre_cli.errors import AudioError, InputError, UsageError
from genre_cli.features.config import FeatureConfig

__all__ = ["compute", "column_names", "output_shape", "n_frames"]

_AMIN = 1e-10  # power floor of the dB conversion (-100 dB)
_KAGGLE_TOP_DB = 80.0  # librosa.feature.mfcc / power_to_db default, used by the Kaggle table
_KAGGLE_N_MFCC = 20
_HC_N_MFCC = 13
_DB_PER_NEPER = np.float32(10.0 / math.log(10.0))  # 10 log10(x) = _DB_PER_NEPER * ln(x)
_DELTA_WIDTH = 9  # librosa.feature.delta default
_CHUNK_BYTES = 4 << 20  # complex spectrogram bytes per internal chunk

_HC_SCALARS = ("zcr", "spectral_centroid", "spectral_contrast", "spectral_bandwidth", "spectral_rolloff")
_HC_STATS = ("mean", "median", "std")
_KAGGLE_SCALARS = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    "harmony",
    "perceptr",
)


# ============================================================================ shapes


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Number of STFT frames of a segment of ``n_samples`` (``center=True``, as librosa)."""
    pad = cfg.n_fft // 2
    return 1 + (n_samples + 2 * pad - cfg.n_fft) // cfg.hop_length


def _check_length(cfg: FeatureConfig, n_samples: int) -> int:
    """Validate the segment length for ``cfg``; return the number of STFT frames."""
    if n_samples < cfg.n_fft:
        raise UsageError(
            f"segments of {n_samples} samples are shorter than n_fft={cfg.n_fft}",
            hint="use longer segments or a smaller n_fft",
        )
    t = n_frames(n_samples, cfg)
    if (cfg.deltas or cfg.handcrafted) and t < _DELTA_WIDTH:
        raise UsageError(
            f"deltas need at least {_DELTA_WIDTH} frames; segments of {n_samples} samples give {t}",
            hint=f"use segments of at least {(_DELTA_WIDTH - 1) * cfg.hop_length} samples",
        )
    if cfg.mfcc_frames != (0, 0):
        _pool_groups(t, n_samples, cfg.hop_length, cfg.mfcc_frames[0])
    return t


def output_shape(name: str, cfg: FeatureConfig, n_samples: int) -> tuple[int, ...]:
    """Per-segment shape of output ``name`` for segments of ``n_samples``, without computing.

    Parameters
    ----------
    name : str
        One of ``cfg.names()``.
    cfg : FeatureConfig
    n_samples : int
        Segment length in samples (at ``cfg.sr``).

    Returns
    -------
    tuple of int
        ``(n_frames, n_bins)`` for matrices (time x feature), ``(d,)`` for vectors; the
        arrays of :func:`compute` have shape ``(n_segments, *output_shape(...))``.

    Raises
    ------
    UsageError
        If ``name`` is not produced by ``cfg``, ``cfg`` selects nothing, or the segment
        length is too short for ``cfg``.
    """
    cfg.validate()
    if name not in cfg.names():
        raise UsageError(f"feature {name!r} is not produced by this config; it produces {', '.join(cfg.names())}")
    t = _check_length(cfg, int(n_samples))
    if name == "mel":
        return (t, cfg.mel)
    if name == "stft":
        return (t, cfg.n_fft // 2 + 1)
    if name == "mfcc":
        return (t, cfg.mfcc * (3 if cfg.deltas else 1))
    if name == "mfcc_frames":
        return tuple(cfg.mfcc_frames)
    return (len(column_names(name, cfg)),)  # type: ignore[arg-type]


def column_names(name: str, cfg: FeatureConfig) -> list[str] | None:
    """Column names of a vector output, ``None`` for matrix outputs.

    ``handcrafted`` (93): ``zcr_mean, zcr_median, zcr_std, spectral_centroid_mean, ...,
    spectral_rolloff_std`` then ``mfcc1_mean, mfcc1_median, mfcc1_std, ..., mfcc13_std``
    then ``mfcc1_delta_mean, ..., mfcc13_delta_std``.

    ``kaggle`` (57): exactly the Kaggle GTZAN ``features_30_sec.csv`` columns, in order,
    without ``filename``, ``length`` and ``label``.

    Raises
    ------
    UsageError
        If ``name`` is not a known output name.
    """
    if name == "handcrafted":
        cols = [f"{f}_{s}" for f in _HC_SCALARS for s in _HC_STATS]
        cols += [f"mfcc{k}_{s}" for k in range(1, _HC_N_MFCC + 1) for s in _HC_STATS]
        cols += [f"mfcc{k}_delta_{s}" for k in range(1, _HC_N_MFCC + 1) for s in _HC_STATS]
        return cols
    if name == "kaggle":
        cols = [f"{f}_{s}" for f in _KAGGLE_SCALARS for s in ("mean", "var")]
        cols.append("tempo")
        cols += [f"mfcc{k}_{s}" for k in range(1, _KAGGLE_N_MFCC + 1) for s in ("mean", "var")]
        return cols
    if name in ("mel", "stft", "mfcc", "mfcc_frames"):
        return None
    raise UsageError(f"unknown feature {name!r}; valid features: mel, stft, mfcc, mfcc_frames, handcrafted, kaggle")


# ============================================================================ cached kernels


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# The constant tables below are built with numpy rather than ``librosa.filters`` /
# ``scipy.signal``: importing those costs ~1.3-1.8 s per worker process (scipy.signal,
# numba), more than featurizing a minute of audio. Each is tested equal to the
# librosa / scipy function it replaces (tests/test_features.py).


@functools.lru_cache(maxsize=16)
def _window(n_fft: int, dtype: type = np.float32) -> np.ndarray:
    """Periodic Hann window ``(n_fft,)``: ``0.5 - 0.5 cos(2 pi k / n_fft)``
    (``librosa.filters.get_window("hann", n_fft, fftbins=True)``), float32 or float64."""
    k = np.arange(n_fft, dtype=np.float64)
    return _readonly((0.5 - 0.5 * np.cos(2.0 * np.pi * k / n_fft)).astype(dtype))


_MEL_F_SP = 200.0 / 3  # Slaney mel scale: Hz per mel below 1 kHz
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOGSTEP = math.log(6.4) / 27.0


def _slaney_hz_to_mel(hz: float) -> float:
    """``librosa.hz_to_mel(hz, htk=False)`` for a scalar."""
    if hz >= _MEL_MIN_LOG_HZ:
        return _MEL_MIN_LOG_MEL + math.log(hz / _MEL_MIN_LOG_HZ) / _MEL_LOGSTEP
    return hz / _MEL_F_SP


def _slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """``librosa.mel_to_hz(mels, htk=False)``."""
    freqs = _MEL_F_SP * mels
    log_t = mels >= _MEL_MIN_LOG_MEL
    freqs[log_t] = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOGSTEP * (mels[log_t] - _MEL_MIN_LOG_MEL))
    return freqs


@functools.lru_cache(maxsize=32)
def _mel_basis_t(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Transposed Slaney mel filterbank, float32 ``(n_fft//2+1, n_mels)``, C-contiguous.

    ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)``
    (Slaney mel scale: linear below 1 kHz, logarithmic above; area-normalised triangles),
    with librosa's arithmetic step by step, so the result is bit-identical (tested).
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    fftfreqs = _fft_freqs(sr, n_fft)
    mel_f = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:n_mels] / fdiff[:n_mels, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return _readonly(np.ascontiguousarray(weights.T))


@functools.lru_cache(maxsize=32)
def _mel_plan(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None,
              group: int = 16) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """Banded form of the mel filterbank: ``(lo, hi, m0, m1, block)`` per group of mels.

    Mel filters are triangles covering few FFT bins, so ``P @ fb.T`` is done per group of
    ``group`` consecutive mel bands over only the bins ``[lo, hi)`` where any of them is
    non-zero (``P[:, lo:hi] @ block``): ~8x fewer multiply-adds than the dense product for
    128 bands, identical non-zero terms.
    """
    fb_t = _mel_basis_t(sr, n_fft, n_mels, fmin, fmax)
    plan = []
    for m0 in range(0, n_mels, group):
        m1 = min(n_mels, m0 + group)
        nz = np.flatnonzero(np.any(fb_t[:, m0:m1] != 0, axis=1))
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 1)
        plan.append((lo, hi, m0, m1, _readonly(np.ascontiguousarray(fb_t[lo:hi, m0:m1]))))
    return tuple(plan)


def _mel_power(p: np.ndarray, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Mel power ``(N, n_mels)`` float32 of a power spectrogram ``p`` ``(N, n_fft//2+1)``."""
    out = np.empty((p.shape[0], n_mels), dtype=np.float32)
    for lo, hi, m0, m1, block in _mel_plan(sr, n_fft, n_mels, fmin, fmax):
        out[:, m0:m1] = p[:, lo:hi] @ block
    return out


@functools.lru_cache(maxsize=32)
def _dct_t(n_in: int, n_out: int) -> np.ndarray:
    """Transposed orthonormal DCT-II matrix, float32 ``(n_in, n_out)``.

    ``x @ _dct_t(n, k)`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[..., :k]``.
    """
    m = np.arange(n_in, dtype=np.float64)
    k = np.arange(n_out, dtype=np.float64)[:, None]
    c = np.cos(np.pi * k * (2.0 * m + 1.0) / (2.0 * n_in)) * math.sqrt(2.0 / n_in)
    c[0] *= math.sqrt(0.5)
    return _readonly(np.ascontiguousarray(c.T.astype(np.float32)))


@functools.lru_cache(maxsize=16)
def _freq_moments(sr: int, n_fft: int) -> np.ndarray:
    """``[1, f, f^2]`` per FFT bin, float64 ``(n_fft//2+1, 3)``, f in Hz."""
    f = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    return _readonly(np.stack([np.ones_like(f), f, f * f], axis=1))


@functools.lru_cache(maxsize=16)
def _fft_freqs(sr: int, n_fft: int) -> np.ndarray:
    """Centre frequency (Hz) of each FFT bin, ``(n_fft//2+1,)`` (``librosa.fft_frequencies``)."""
    return _readonly(np.fft.rfftfreq(n_fft, d=1.0 / sr))


@functools.lru_cache(maxsize=16)
def _contrast_bands(sr: int, n_fft: int, fmin: float = 200.0, n_bands: int = 6,
                    quantile: float = 0.02) -> tuple[tuple[int, int, int], ...]:
    """``(start, stop, q)`` bin slices and quantile counts of librosa's spectral contrast.

    Reproduces the band selection of ``librosa.feature.spectral_contrast`` (defaults
    ``fmin=200``, ``n_bands=6``, ``quantile=0.02``): band ``k`` spans ``[200*2^(k-1),
    200*2^k]`` Hz (band 0 from 0 Hz, the last to Nyquist), each band also takes the bin
    below it and drops its top bin, and the peak/valley are the means of the ``q`` largest /
    smallest magnitudes of the band.
    """
    freq = _fft_freqs(sr, n_fft)
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    out = []
    for k, (lo, hi) in enumerate(zip(octa[:-1], octa[1:])):
        band = np.logical_and(freq >= lo, freq <= hi)
        idx = np.flatnonzero(band)
        if idx.size == 0:
            raise UsageError(f"n_fft={n_fft} is too small for spectral contrast band {k} ({lo:g}-{hi:g} Hz)")
        if k > 0:
            band[idx[0] - 1] = True
        if k == n_bands:
            band[idx[-1] + 1:] = True
        sel = np.flatnonzero(band)
        start, stop = int(sel[0]), int(sel[-1]) + 1
        q = int(max(np.rint(quantile * np.sum(band)), 1))
        if k < n_bands:
            stop -= 1
        if stop - start < 1:
            raise UsageError(f"n_fft={n_fft} is too small for spectral contrast band {k}")
        out.append((start, stop, min(q, stop - start)))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _chroma_basis_t(sr: int, n_fft: int, tuning: float) -> np.ndarray:
    """Transposed chroma filterbank (``librosa.filters.chroma``), float32 ``(F, 12)``."""
    import librosa

    fb = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=12)
    return _readonly(np.ascontiguousarray(fb.T.astype(np.float32)))


@functools.lru_cache(maxsize=64)
def _pool_groups(t: int, n_samples: int, hop: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Start frame and frame count of each of ``n_steps`` equal blocks of a segment.

    Frame ``j`` (centre at sample ``j * hop``) belongs to block
    ``min(j * hop * n_steps // n_samples, n_steps - 1)``.
    """
    block = np.minimum((np.arange(t, dtype=np.int64) * hop * n_steps) // n_samples, n_steps - 1)
    counts = np.bincount(block, minlength=n_steps)
    if np.any(counts == 0):
        raise UsageError(
            f"mfcc_frames: {n_steps} steps over {n_samples} samples leaves steps without any "
            f"frame (hop {hop})",
            hint=f"use at most {max(1, n_samples // hop)} steps or longer segments",
        )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return _readonly(starts), _readonly(counts.astype(np.float32))


# ============================================================================ primitives


def _stft(y: np.ndarray, n_fft: int, hop: int, workers: int = 1, *, precise: bool = False) -> np.ndarray:
    """Complex STFT, time-major complex64 ``(n, n_frames, n_fft//2+1)``.

    Equals ``librosa.stft(y, n_fft=n_fft, hop_length=hop)`` (Hann, ``center=True``,
    ``pad_mode="constant"``) with the last two axes swapped, via ``scipy.fft.rfft``.
    ``precise=False``: float32 frames and FFT (about half the cost of librosa's float64
    FFT); the error is ~1e-7 of the frame's *peak* bin, so bins 140 dB below the peak are
    noise. ``precise=True``: float64 frames and FFT rounded to complex64, as librosa does;
    each bin is then exact to its own float32 rounding. The vector statistics use it: spectral
    contrast's valley (mean of a band's smallest bins) can sit 150 dB below the frame peak in
    lossy-coded audio (near-empty bins above the codec's low-pass).
    """
    import scipy.fft

    pad = n_fft // 2
    yp = np.pad(y.astype(np.float64) if precise else y, ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft, axis=-1)[:, ::hop]
    x = frames * _window(n_fft, np.float64 if precise else np.float32)
    spec = scipy.fft.rfft(x, axis=-1, workers=workers)
    return spec.astype(np.complex64, copy=False)


def _power(spec: np.ndarray) -> np.ndarray:
    """``|X|^2`` in float32, same shape."""
    p = np.square(spec.real)
    p += np.square(spec.imag)
    return p


def _to_db(p: np.ndarray, top_db: float | None, *, out: np.ndarray | None = None) -> np.ndarray:
    """``10 log10(max(p, 1e-10))`` with an optional per-segment floor ``max - top_db``.

    ``p``: ``(n, ...)`` power, float32. Equals ``librosa.power_to_db(p[i], ref=1.0,
    amin=1e-10, top_db=top_db)`` for each segment ``i``. Range: [-100, +inf) dB.
    """
    # as -100 + 10 log10(max(p, amin) / amin): numpy's float32 log is vectorised, log10 is
    # not (~4x slower), and the floor stays exactly -100 dB (ln 1 = 0)
    o = np.maximum(p, _AMIN, out=out)
    o *= np.float32(1.0 / _AMIN)
    np.log(o, out=o)
    o *= _DB_PER_NEPER
    o += np.float32(10.0 * math.log10(_AMIN))
    if top_db is not None:
        mx = o.reshape(o.shape[0], -1).max(axis=1)
        np.maximum(o, (mx - top_db).reshape((-1,) + (1,) * (o.ndim - 1)), out=o)
    return o


def _zcr(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
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


def _rms(y: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """RMS ``(n, n_frames)`` float32 (``librosa.feature.rms(y=...)``, zero padding)."""
    import librosa

    return librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop)[:, 0, :]


def _spectral_shape(mag: np.ndarray, sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid, bandwidth (p=2) and 85 % rolloff of a magnitude spectrogram.

    ``mag``: ``(n, t, F)`` float32. Returns three ``(n, t)`` float64 arrays in Hz, equal to
    ``librosa.feature.spectral_centroid / spectral_bandwidth / spectral_rolloff`` with
    ``S=mag``. All-zero frames give 0 for each (as librosa).
    """
    n, t, f = mag.shape
    mom = mag.reshape(-1, f).astype(np.float64) @ _freq_moments(sr, n_fft)  # (n*t, 3)
    s0 = mom[:, 0]
    ok = s0 >= np.finfo(np.float32).tiny
    s0 = np.where(ok, s0, 1.0)
    centroid = np.where(ok, mom[:, 1] / s0, 0.0)
    bw2 = np.where(ok, mom[:, 2] / s0 - centroid**2, 0.0)
    bandwidth = np.sqrt(np.maximum(bw2, 0.0))
    cum = np.cumsum(mag, axis=-1)
    thr = 0.85 * cum[..., -1:]
    idx = np.argmax(cum >= thr, axis=-1)
    rolloff = _fft_freqs(sr, n_fft)[idx]
    return centroid.reshape(n, t), bandwidth.reshape(n, t), rolloff


def _contrast(mag: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Spectral contrast ``(n, 7, t)`` float64 in dB, per segment equal to
    ``librosa.feature.spectral_contrast(S=mag[i].T, sr=sr, n_fft=n_fft)``.

    Bands are sorted along the contiguous frequency axis of the time-major layout
    (librosa sorts along the strided one); single-bin quantiles use min/max.
    As in librosa, peak and valley go through ``power_to_db`` with its default
    ``top_db=80`` floor, taken per segment here.

    Precision: on the same ``mag`` this equals librosa to rounding. ``mag`` must come from the
    ``precise`` STFT (float64 FFT, as librosa's): with the float32 FFT (error ~1e-7 of the
    frame's peak) a band whose smallest bins are near-empty (the top band above a lossy
    codec's low-pass) has its valley at that error level, and the band's contrast differs
    from ``spectral_contrast(y=...)`` by up to a few dB in those frames.
    """
    bands = _contrast_bands(sr, n_fft)
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
    return _to_db(peak, 80.0) - _to_db(valley, 80.0)


def _chroma(power: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """Chroma ``(n, t, 12)`` float32 in [0, 1], per segment equal to
    ``librosa.feature.chroma_stft(S=power[i].T, sr=sr)`` (tuning estimated per segment)."""
    import librosa

    out = np.empty(power.shape[:2] + (12,), dtype=np.float32)
    for i in range(power.shape[0]):
        pt = power[i].T
        if np.any(pt):
            tuning = float(librosa.estimate_tuning(S=pt, sr=sr, n_fft=n_fft, bins_per_octave=12))
        else:
            tuning = 0.0
        np.matmul(power[i], _chroma_basis_t(sr, n_fft, round(tuning, 6)), out=out[i])
    norm = out.max(axis=-1, keepdims=True)
    norm[norm < np.finfo(np.float32).tiny] = 1.0
    out /= norm
    return out


@functools.lru_cache(maxsize=8)
def _delta_kernels(width: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Savitzky-Golay operators of ``librosa.feature.delta`` (``mode="interp"``).

    Returns the interior taps ``(width,)`` (correlation) and the head / tail edge operators
    ``(width // 2, width)`` applied to the first / last ``width`` frames (interp mode fits
    one polynomial to each edge window), all float64.

    With ``polyorder == deriv == order`` the fitted polynomial's ``order``-th derivative is
    a constant (``order!`` times its leading coefficient), so every output of a window --
    interior or edge -- is the same least-squares functional of that window's ``width``
    values: the interior taps, and edge rows equal to them. (Computed with numpy's
    ``lstsq`` as ``scipy.signal.savgol_coeffs`` does; tested equal to ``savgol_filter``.)
    """
    half = width // 2
    pos = np.arange(width, dtype=np.float64) - half
    vander = pos[None, :] ** np.arange(order + 1, dtype=np.float64)[:, None]  # (order+1, width)
    unit = np.zeros(order + 1)
    unit[order] = math.factorial(order)
    taps, *_ = np.linalg.lstsq(vander, unit, rcond=None)
    edge = np.broadcast_to(taps, (half, width)).copy()
    return _readonly(taps), _readonly(edge), _readonly(edge.copy())


def _delta(x: np.ndarray, order: int = 1) -> np.ndarray:
    """``librosa.feature.delta(x, width=9, order=order, axis=1)`` of ``(n, t, c)``, float32.

    Linear in ``x``: interior frames by a 9-tap correlation, the first/last 4 frames by
    the cached edge operators. Needs ``t >= 9``.
    """
    w = _DELTA_WIDTH
    taps, head, tail = _delta_kernels(w, order)
    t = x.shape[1]
    half = w // 2
    out = np.zeros(x.shape, dtype=np.float32)
    inner = out[:, half:t - half]
    for k in range(w):
        inner += np.float32(taps[k]) * x[:, k:t - w + 1 + k]
    out[:, :half] = np.einsum("hw,nwc->nhc", head, x[:, :w])
    out[:, t - half:] = np.einsum("hw,nwc->nhc", tail, x[:, t - w:])
    return out


def _stats(x: np.ndarray, funcs: tuple[str, ...], axis: tuple[int, ...] | int) -> list[np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    table: dict[str, Callable[..., np.ndarray]] = {
        "mean": np.mean, "median": np.median, "std": np.std, "var": np.var,
    }
    return [table[f](x, axis=axis) for f in funcs]


# ============================================================================ compute


class _Chunk:
    """Lazily computed, shared intermediate results for one chunk of segments."""

    def __init__(self, y: np.ndarray, cfg: FeatureConfig, workers: int = 1):
        self.y = y
        self.cfg = cfg
        # (n, t, F) complex64; float64 FFT when vector statistics are asked for (see _stft)
        self.spec = _stft(y, cfg.n_fft, cfg.hop_length, workers, precise=bool(cfg.handcrafted or cfg.kaggle))
        self._power: np.ndarray | None = None
        self._mag: np.ndarray | None = None
        self._mel: dict[tuple, np.ndarray] = {}
        self._logmel: dict[tuple, np.ndarray] = {}
        self._shape: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._zcr: np.ndarray | None = None

    @property
    def power(self) -> np.ndarray:
        if self._power is None:
            self._power = _power(self.spec)
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
            mel = _mel_power(p.reshape(-1, f), self.cfg.sr, self.cfg.n_fft, n_mels, fmin, fmax)
            self._mel[key] = mel.reshape(n, t, n_mels)
        return self._mel[key]

    def logmel(self, n_mels: int, fmin: float, fmax: float | None, top_db: float | None) -> np.ndarray:
        key = (n_mels, fmin, fmax, top_db)
        if key not in self._logmel:
            self._logmel[key] = _to_db(self.mel(n_mels, fmin, fmax), top_db)
        return self._logmel[key]

    def mfcc(self, n_mfcc: int, n_mels: int, fmin: float, fmax: float | None, top_db: float | None) -> np.ndarray:
        """MFCC ``(n, t, n_mfcc)`` float32 (``librosa.feature.mfcc``: DCT-II ortho of log-mel)."""
        lm = self.logmel(n_mels, fmin, fmax, top_db)
        n, t, m = lm.shape
        return (lm.reshape(-1, m) @ _dct_t(m, n_mfcc)).reshape(n, t, n_mfcc)

    @property
    def shape(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._shape is None:
            self._shape = _spectral_shape(self.mag, self.cfg.sr, self.cfg.n_fft)
        return self._shape

    @property
    def zcr(self) -> np.ndarray:
        if self._zcr is None:
            self._zcr = _zcr(self.y, self.cfg.n_fft, self.cfg.hop_length)
        return self._zcr


def _handcrafted(c: _Chunk) -> np.ndarray:
    """Pun & Nazirkhanova 2020, Table 1: 93 values per segment, ``(n, 93)`` float32.

    Derivation of 93: five scalar-per-frame descriptors x (mean, median, std) = 15, plus
    13 MFCCs x 3 = 39, plus their deltas (``librosa.feature.delta``, width 9) x 3 = 39.
    The table gives spectral contrast only 3 values although librosa returns 7 bands
    (6 octaves above 200 Hz + the remainder): the paper's ``np.mean/np.median/np.std``
    without ``axis`` reduce the whole ``(7, n_frames)`` matrix, so here contrast's
    statistics are taken over all bands and frames together (its mean equals the mean
    of the band-averaged contrast; median and std are over the flattened matrix).
    ZCR uses ``frame_length = n_fft``; centroid, bandwidth (p=2), rolloff (85 %) and
    contrast use the magnitude STFT; MFCCs come from ``mfcc_mels`` full-band mel bands with
    ``cfg.top_db``. std is the population std (``ddof=0``), as numpy's default.
    """
    cfg = c.cfg
    centroid, bandwidth, rolloff = c.shape
    contrast = _contrast(c.mag, cfg.sr, cfg.n_fft)
    cols: list[np.ndarray] = []
    for x in (c.zcr, centroid):
        cols += _stats(x, _HC_STATS, axis=1)
    cols += _stats(contrast, _HC_STATS, axis=(1, 2))
    for x in (bandwidth, rolloff):
        cols += _stats(x, _HC_STATS, axis=1)
    m = c.mfcc(_HC_N_MFCC, cfg.mfcc_mels, 0.0, None, cfg.top_db)
    d = _delta(m)
    for x in (m, d):
        mean, med, std = _stats(x, _HC_STATS, axis=1)  # each (n, 13)
        cols += [v for k in range(_HC_N_MFCC) for v in (mean[:, k], med[:, k], std[:, k])]
    return np.stack(cols, axis=1).astype(np.float32)


def _kaggle(c: _Chunk) -> np.ndarray:
    """The Kaggle GTZAN ``features_*.csv`` vector, ``(n, 57)`` float32.

    Definitions (checked against ``blues.00099``, see ``bench/kaggle_check.py``): ``mean``
    and ``var`` (``ddof=0``) over frames of ``chroma_stft`` (all 12 x t values),
    ``rms(y=...)``, centroid, bandwidth, rolloff, ZCR; ``harmony`` / ``perceptr`` are the
    mean and var of the *waveforms* of ``librosa.effects.hpss(y)`` (computed from the shared
    STFT); ``tempo`` as ``librosa.beat.beat_track(y=...)``; ``mfccK`` from
    ``librosa.feature.mfcc(y=...)`` defaults, i.e. 128 mel bands and ``top_db=80`` (without
    that floor mfcc1_mean is 8 % and mfcc3_mean 76 % off the table).
    """
    import librosa

    cfg = c.cfg
    sr, n_fft, hop = cfg.sr, cfg.n_fft, cfg.hop_length
    centroid, bandwidth, rolloff = c.shape
    chroma = _chroma(c.power, sr, n_fft)
    rms = _rms(c.y, n_fft, hop)
    # harmonic / percussive waveforms from the shared STFT (= librosa.effects.hpss(y))
    spec_l = c.spec.transpose(0, 2, 1)  # librosa layout (n, F, t)
    harm, perc = librosa.decompose.hpss(spec_l)
    y_h = librosa.istft(harm, n_fft=n_fft, hop_length=hop, length=c.y.shape[-1], dtype=np.float32)
    y_p = librosa.istft(perc, n_fft=n_fft, hop_length=hop, length=c.y.shape[-1], dtype=np.float32)
    # tempo as librosa.beat.beat_track(y=y): onset envelope (median over 128 mel bands of the
    # log-mel difference, per-segment top_db=80) then feature.tempo
    logmel = c.logmel(128, 0.0, None, _KAGGLE_TOP_DB)
    oenv = librosa.onset.onset_strength(
        S=logmel.transpose(0, 2, 1), sr=sr, hop_length=hop, n_fft=n_fft, aggregate=np.median
    )
    has_onset = oenv.any(axis=-1)
    tempo = np.zeros(c.y.shape[0])
    if has_onset.any():
        tempo[has_onset] = librosa.feature.tempo(
            onset_envelope=oenv[has_onset], sr=sr, hop_length=hop, start_bpm=120.0
        ).reshape(-1)
    cols: list[np.ndarray] = []
    cols += _stats(chroma, ("mean", "var"), axis=(1, 2))
    for x in (rms, centroid, bandwidth, rolloff, c.zcr, y_h, y_p):
        cols += _stats(x, ("mean", "var"), axis=1)
    cols.append(tempo)
    m = c.mfcc(_KAGGLE_N_MFCC, 128, 0.0, None, _KAGGLE_TOP_DB)
    mean, var = _stats(m, ("mean", "var"), axis=1)
    cols += [v for k in range(_KAGGLE_N_MFCC) for v in (mean[:, k], var[:, k])]
    return np.stack(cols, axis=1).astype(np.float32)


def _compute_chunk(y: np.ndarray, cfg: FeatureConfig, out: dict[str, np.ndarray], sl: slice,
                   workers: int) -> None:
    c = _Chunk(y, cfg, workers)
    top_db = cfg.top_db
    if cfg.mel:
        if cfg.db:
            out["mel"][sl] = c.logmel(cfg.mel, cfg.fmin, cfg.fmax, top_db)
        else:
            out["mel"][sl] = c.mel(cfg.mel, cfg.fmin, cfg.fmax)
    if cfg.stft:
        if cfg.db:
            _to_db(c.power, top_db, out=out["stft"][sl])
        else:
            out["stft"][sl] = c.mag
    if cfg.mfcc:
        m = c.mfcc(cfg.mfcc, cfg.mfcc_mels, cfg.fmin, cfg.fmax, top_db)
        if cfg.deltas:
            k = cfg.mfcc
            dst = out["mfcc"][sl]
            dst[..., :k] = m
            dst[..., k:2 * k] = _delta(m, 1)
            dst[..., 2 * k:] = _delta(m, 2)
        else:
            out["mfcc"][sl] = m
    if cfg.mfcc_frames != (0, 0):
        steps, k = cfg.mfcc_frames
        m = c.mfcc(k, cfg.mfcc_mels, cfg.fmin, cfg.fmax, top_db)
        starts, counts = _pool_groups(m.shape[1], y.shape[1], cfg.hop_length, steps)
        out["mfcc_frames"][sl] = np.add.reduceat(m, starts, axis=1) / counts[:, None]
    if cfg.handcrafted:
        out["handcrafted"][sl] = _handcrafted(c)
    if cfg.kaggle:
        out["kaggle"][sl] = _kaggle(c)


@functools.lru_cache(maxsize=1)
def _threadpools():
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - optional
        return None
    return threadpoolctl.ThreadpoolController()


def compute(y: np.ndarray, cfg: FeatureConfig, *, workers: int | None = 1) -> dict[str, np.ndarray]:
    """Compute every output of ``cfg`` for a batch of equal-length mono segments.

    Parameters
    ----------
    y : np.ndarray [shape=(n_segments, n_samples)]
        Mono audio at ``cfg.sr`` Hz, nominally in [-1, 1]; converted to float32.
        ``n_samples >= cfg.n_fft``. ``n_segments`` may be 0.
    cfg : FeatureConfig
    workers : int or None, keyword-only
        Threads for the FFT and BLAS during the call. Default 1: the featurize stage runs
        one process per core, and multi-threaded BLAS on busy cores is several times
        slower on these small products. None leaves the global BLAS setting alone and
        uses one FFT thread.

    Returns
    -------
    dict of str to np.ndarray
        ``{name: array}`` for each name of ``cfg.names()``, float32, leading dim
        ``n_segments``, per-segment shape :func:`output_shape`:

        * ``mel``: ``(n_frames, mel)``, dB re 1.0 (range [-100, ~+60]) or power.
        * ``stft``: ``(n_frames, n_fft//2+1)``, dB re 1.0 magnitude or magnitude.
        * ``mfcc``: ``(n_frames, mfcc)`` or ``(n_frames, 3*mfcc)`` with deltas.
        * ``mfcc_frames``: ``(n_steps, n_mfcc)``.
        * ``handcrafted``: ``(93,)``; ``kaggle``: ``(57,)`` (see :func:`column_names`).

        Frame ``j`` is centred on sample ``j * hop_length``. All values are finite,
        including for silent or constant (DC) input.

    Raises
    ------
    UsageError
        Invalid config (nothing selected) or segments too short for it.
    InputError
        ``y`` is not a 2-D real array.
    AudioError
        ``y`` contains NaN or infinity.
    """
    cfg.validate()
    y = np.asarray(y)
    if y.ndim != 2 or not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise InputError(f"expected a real (n_segments, n_samples) array, got shape {y.shape} dtype {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    n, n_samples = y.shape
    t = _check_length(cfg, n_samples)
    if not np.isfinite(y).all():
        raise AudioError("audio contains NaN or infinite samples")
    out = {name: np.empty((n, *output_shape(name, cfg, n_samples)), dtype=np.float32) for name in cfg.names()}
    per_seg = t * (cfg.n_fft // 2 + 1) * 8
    step = max(1, _CHUNK_BYTES // per_seg)
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise UsageError(f"workers must be a positive integer or None, got {workers!r}")
    ctl = _threadpools() if workers is not None else None
    limit = ctl.limit(limits=workers, user_api="blas") if ctl is not None else contextlib.nullcontext()
    with limit:
        for i in range(0, n, step):
            sl = slice(i, min(n, i + step))
            _compute_chunk(y[sl], cfg, out, sl, workers or 1)
    return out


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
