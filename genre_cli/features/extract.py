"""Batched feature extraction: :func:`compute` runs the selected feature kinds on a batch.

Design
------
* **One frontend per chunk.** Each selected kind names the frontend it is computed from; a
  frontend object is built once per chunk and shared (the ``stft`` frontend: one STFT, from
  which mel power, log-STFT, MFCC, spectral shape, contrast and chroma are derived; only
  features that genuinely need something else recompute: zero-crossing rate and RMS from the
  waveform, HPSS of the *shared* STFT, tempo from the shared 128-band log-mel).
* **Same numbers as librosa.** Each derived quantity reproduces the corresponding
  ``librosa.feature.*(y=...)`` call on one segment (tests compare them), but in float32 with
  matrix products and the cached banks of :mod:`genre_cli.features.filters`.
* **Fixed dB reference.** dB values are ``10 log10(max(power, 1e-10))`` (librosa's
  ``power_to_db(ref=1.0, amin=1e-10)``), never ``ref=np.max``: the same audio gives the
  same numbers at predict time, and silence gives -100 dB rather than -inf.
* **Batching is invisible.** Every value of segment ``i`` depends on segment ``i`` only, so
  the result of a batch equals the stacked per-segment results. Internally the batch is
  processed in chunks of a few MB of spectrogram to stay cache friendly.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from genre_cli.errors import AudioError, InputError, UsageError
from genre_cli.features import kind as _kinds
from genre_cli.features.config import FeatureConfig
from genre_cli.features.stft import n_frames

__all__ = ["compute", "column_names", "output_shape", "n_frames", "CHUNK_BYTES"]

#: Complex spectrogram bytes per internal chunk.
CHUNK_BYTES = 4 << 20


def check_length(cfg: FeatureConfig, n_samples: int) -> int:
    """Validate the segment length for every selected kind; return the number of STFT frames."""
    kinds = cfg.kinds()
    t = 0
    for name in dict.fromkeys(k.frontend for k in kinds):
        t = _kinds.FRONTENDS.get(name).check_length(cfg, n_samples) or t
    for k in kinds:
        if k.check_length is not None:
            k.check_length(cfg, n_samples, t)
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
    check_length(cfg, int(n_samples))
    return tuple(_kinds.get(name).shape(cfg, int(n_samples)))


def column_names(name: str, cfg: FeatureConfig) -> list[str] | None:
    """Column names of a vector output, ``None`` for matrix outputs (see each kind's ``columns``).

    Raises
    ------
    UsageError
        If ``name`` is not a known output name.
    """
    kind = _kinds.get(name)
    return None if kind.columns is None else kind.columns(cfg)


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
    t = check_length(cfg, n_samples)
    if not np.isfinite(y).all():
        raise AudioError("audio contains NaN or infinite samples")
    kinds = cfg.kinds()
    out = {k.name: np.empty((n, *k.shape(cfg, n_samples)), dtype=np.float32) for k in kinds}
    per_seg = max(t, 1) * (cfg.n_fft // 2 + 1) * 8
    step = max(1, CHUNK_BYTES // per_seg)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"workers must be a positive integer or None, got {workers!r}")
    ctl = _threadpools() if workers is not None else None
    limit = ctl.limit(limits=workers, user_api="blas") if ctl is not None else contextlib.nullcontext()
    with limit:
        for i in range(0, n, step):
            sl = slice(i, min(n, i + step))
            fronts: dict[str, object] = {}
            for k in kinds:
                if k.frontend not in fronts:
                    fronts[k.frontend] = _kinds.FRONTENDS.get(k.frontend).make(y[sl], cfg, kinds, workers or 1)
                k.compute(fronts[k.frontend], cfg, out[k.name][sl])
    return out
