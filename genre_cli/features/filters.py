"""Filter banks and constant kernels of the feature library, cached (like ``librosa.filters``).

Why numpy and not ``librosa.filters`` / ``scipy.signal``
---------------------------------------------------------
Importing ``librosa.filters`` or ``scipy.signal`` costs 1.3-1.8 s per process (scipy.signal,
numba): more than featurizing a minute of audio in each of ``genre featurize --jobs N``'s worker
processes (measured when this module was written; ``tests/test_features.py`` checks that the mel
path imports neither). So the window, the mel filter bank, the DCT matrix, the delta kernels
and the spectral-contrast bands are built here with numpy, each tested equal to the library
function it replaces (``tests/test_features.py``). Only :func:`chroma` calls librosa: the
Kaggle vector, its only user, needs librosa for HPSS and tempo anyway.

Every function is cached (``functools.lru_cache``) and returns a **read-only** array: the
same parameters give the same object, so a batch of segments builds each bank once.

Examples
--------
>>> fb = mel(sr=22050, n_fft=2048, n_mels=128)
>>> fb.shape, fb.dtype
((128, 1025), dtype('float32'))
>>> hann(8)
array([0.        , 0.14644662, 0.5       , 0.8535534 , 1.        ,
       0.8535534 , 0.5       , 0.14644662], dtype=float32)
"""

from __future__ import annotations

import functools
import math

import numpy as np

from genre_cli.errors import UsageError

__all__ = [
    "hann",
    "fft_frequencies",
    "mel",
    "mel_t",
    "mel_bands",
    "dct",
    "dct_t",
    "chroma_t",
    "delta_kernels",
    "contrast_bands",
    "frequency_moments",
]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=16)
def hann(n_fft: int, dtype: type = np.float32) -> np.ndarray:
    """Periodic Hann window.

    Parameters
    ----------
    n_fft : int > 0
        Window length in samples.
    dtype : numpy dtype
        ``np.float32`` (default) or ``np.float64``.

    Returns
    -------
    np.ndarray [shape=(n_fft,)]
        ``0.5 - 0.5 cos(2 pi k / n_fft)``, in [0, 1]; equals
        ``librosa.filters.get_window("hann", n_fft, fftbins=True)``.
    """
    k = np.arange(n_fft, dtype=np.float64)
    return _readonly((0.5 - 0.5 * np.cos(2.0 * np.pi * k / n_fft)).astype(dtype))


@functools.lru_cache(maxsize=16)
def fft_frequencies(sr: int, n_fft: int) -> np.ndarray:
    """Centre frequency of each FFT bin.

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1,), dtype=float64]
        In Hz, from 0 to ``sr / 2``; equals ``librosa.fft_frequencies(sr=sr, n_fft=n_fft)``.
    """
    return _readonly(np.fft.rfftfreq(n_fft, d=1.0 / sr))


# Slaney mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_MEL_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
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
def mel_t(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Transposed mel filter bank, C-contiguous, for ``power @ mel_t(...)``.

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1, n_mels), dtype=float32]
        ``mel(...).T`` (see :func:`mel`).
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(fmin), _slaney_hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:n_mels] / fdiff[:n_mels, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return _readonly(np.ascontiguousarray(weights.T))


def mel(*, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Mel filter bank: Slaney mel scale, area-normalised triangles.

    Parameters
    ----------
    sr : int > 0
        Sample rate in Hz.
    n_fft : int > 0
        FFT length.
    n_mels : int > 0
        Number of mel bands.
    fmin, fmax : float >= 0, float or None
        Frequency range in Hz; ``fmax=None`` is ``sr / 2``.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float32]
        Bit-identical to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
        fmax=fmax, dtype=np.float32)`` (librosa's arithmetic, step by step).
    """
    return mel_t(sr, n_fft, n_mels, float(fmin), None if fmax is None else float(fmax)).T


@functools.lru_cache(maxsize=32)
def mel_bands(
    sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, group: int = 16
) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """Banded form of the mel filter bank: ``(lo, hi, m0, m1, block)`` per group of bands.

    Mel triangles cover few FFT bins, so ``power @ mel_t`` is done per group of ``group``
    consecutive bands over only the bins ``[lo, hi)`` where any of them is non-zero
    (``power[:, lo:hi] @ block``, ``block`` of shape ``(hi - lo, m1 - m0)``): ~8x fewer
    multiply-adds than the dense product for 128 bands, the same non-zero terms.
    """
    fb_t = mel_t(sr, n_fft, n_mels, fmin, fmax)
    plan = []
    for m0 in range(0, n_mels, group):
        m1 = min(n_mels, m0 + group)
        nz = np.flatnonzero(np.any(fb_t[:, m0:m1] != 0, axis=1))
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 1)
        plan.append((lo, hi, m0, m1, _readonly(np.ascontiguousarray(fb_t[lo:hi, m0:m1]))))
    return tuple(plan)


@functools.lru_cache(maxsize=32)
def dct_t(n_in: int, n_out: int) -> np.ndarray:
    """Transposed orthonormal DCT-II matrix, for ``x @ dct_t(n_in, n_out)``.

    Returns
    -------
    np.ndarray [shape=(n_in, n_out), dtype=float32]
        ``x @ dct_t(n, k)`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[..., :k]``.
    """
    m = np.arange(n_in, dtype=np.float64)
    k = np.arange(n_out, dtype=np.float64)[:, None]
    c = np.cos(np.pi * k * (2.0 * m + 1.0) / (2.0 * n_in)) * math.sqrt(2.0 / n_in)
    c[0] *= math.sqrt(0.5)
    return _readonly(np.ascontiguousarray(c.T.astype(np.float32)))


def dct(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis: row ``k`` is the ``k``-th cosine over ``n_in`` inputs.

    Returns
    -------
    np.ndarray [shape=(n_out, n_in), dtype=float32]
        ``dct(k, n) @ x`` equals ``scipy.fft.dct(x, type=2, norm="ortho")[:k]`` (MFCCs are
        the first ``n_mfcc`` rows applied to the log-mel bands).
    """
    return dct_t(n_in, n_out).T


@functools.lru_cache(maxsize=16)
def frequency_moments(sr: int, n_fft: int) -> np.ndarray:
    """``[1, f, f^2]`` per FFT bin (f in Hz) for spectral centroid and bandwidth.

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1, 3), dtype=float64]
    """
    f = fft_frequencies(sr, n_fft)
    return _readonly(np.stack([np.ones_like(f), f, f * f], axis=1))


@functools.lru_cache(maxsize=16)
def contrast_bands(sr: int, n_fft: int, fmin: float = 200.0, n_bands: int = 6, quantile: float = 0.02) -> tuple[tuple[int, int, int], ...]:
    """``(start, stop, q)`` bin slices and quantile counts of librosa's spectral contrast.

    Reproduces the band selection of ``librosa.feature.spectral_contrast`` (defaults
    ``fmin=200``, ``n_bands=6``, ``quantile=0.02``): band ``k`` spans ``[200*2^(k-1),
    200*2^k]`` Hz (band 0 from 0 Hz, the last to Nyquist), each band also takes the bin
    below it and drops its top bin, and the peak/valley are the means of the ``q`` largest /
    smallest magnitudes of the band.

    Raises
    ------
    UsageError
        ``n_fft`` is too small to give every band a bin.
    """
    freq = fft_frequencies(sr, n_fft)
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
            band[idx[-1] + 1 :] = True
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
def chroma_t(sr: int, n_fft: int, tuning: float) -> np.ndarray:
    """Transposed chroma filter bank (``librosa.filters.chroma``, 12 bins; imports librosa).

    Returns
    -------
    np.ndarray [shape=(n_fft // 2 + 1, 12), dtype=float32]
    """
    import librosa

    fb = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=12)
    return _readonly(np.ascontiguousarray(fb.T.astype(np.float32)))


@functools.lru_cache(maxsize=8)
def delta_kernels(width: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Savitzky-Golay operators of ``librosa.feature.delta`` (``mode="interp"``).

    Parameters
    ----------
    width : odd int >= 3
        Window length in frames (librosa's default 9).
    order : int >= 1
        Derivative order (1: delta, 2: delta-delta).

    Returns
    -------
    taps : np.ndarray [shape=(width,), dtype=float64]
        Interior taps (a correlation over ``width`` frames).
    head, tail : np.ndarray [shape=(width // 2, width), dtype=float64]
        Operators applied to the first / last ``width`` frames (interp mode fits one
        polynomial to each edge window).

    Notes
    -----
    With ``polyorder == deriv == order`` the fitted polynomial's ``order``-th derivative is a
    constant (``order!`` times its leading coefficient), so every output of a window --
    interior or edge -- is the same least-squares functional of that window's ``width``
    values: the interior taps, and edge rows equal to them. Computed with numpy's ``lstsq``
    as ``scipy.signal.savgol_coeffs`` does; tested equal to ``savgol_filter``.
    """
    half = width // 2
    pos = np.arange(width, dtype=np.float64) - half
    vander = pos[None, :] ** np.arange(order + 1, dtype=np.float64)[:, None]  # (order+1, width)
    unit = np.zeros(order + 1)
    unit[order] = math.factorial(order)
    taps, *_ = np.linalg.lstsq(vander, unit, rcond=None)
    edge = np.broadcast_to(taps, (half, width)).copy()
    return _readonly(taps), _readonly(edge), _readonly(edge.copy())
