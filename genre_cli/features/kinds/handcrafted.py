"""``handcrafted``: the 93 statistics of Pun & Nazirkhanova 2020, Table 1."""

from __future__ import annotations

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.features import spectral
from genre_cli.features.kind import FeatureKind, register
from genre_cli.features.stft import check_delta_length, check_mfcc_mels
from genre_cli.options import Option
from genre_cli.papers import PUN_2020

N_MFCC = 13
#: Spectral contrast uses librosa's default 6 octave bands above 200 Hz, whose top band edge
#: (6400 Hz) must lie below Nyquist.
CONTRAST_MIN_SR = 12_801
SCALARS = ("zcr", "spectral_centroid", "spectral_contrast", "spectral_bandwidth", "spectral_rolloff")
STATS = ("mean", "median", "std")


def columns(cfg=None) -> list[str]:
    """``zcr_mean, zcr_median, zcr_std, spectral_centroid_mean, ..., spectral_rolloff_std``, then
    ``mfcc1_mean, mfcc1_median, mfcc1_std, ..., mfcc13_std``, then ``mfcc1_delta_mean, ...,
    mfcc13_delta_std`` (93)."""
    cols = [f"{f}_{s}" for f in SCALARS for s in STATS]
    cols += [f"mfcc{k}_{s}" for k in range(1, N_MFCC + 1) for s in STATS]
    cols += [f"mfcc{k}_delta_{s}" for k in range(1, N_MFCC + 1) for s in STATS]
    return cols


def _check(cfg) -> None:
    if not cfg.handcrafted:
        return
    if cfg.sr < CONTRAST_MIN_SR:
        raise UsageError(f"handcrafted needs sr >= {CONTRAST_MIN_SR} (spectral contrast bands up to 6400 Hz), got {cfg.sr}")
    if cfg.mfcc_mels < N_MFCC:
        raise UsageError(f"handcrafted needs mfcc_mels >= {N_MFCC}, got {cfg.mfcc_mels}")
    check_mfcc_mels(cfg, "--handcrafted")


def _handcrafted(c, cfg, out: np.ndarray) -> None:
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
    centroid, bandwidth, rolloff = c.shape
    contrast = spectral.contrast(c.mag, cfg.sr, cfg.n_fft)
    cols: list[np.ndarray] = []
    for x in (c.zcr, centroid):
        cols += spectral.stats(x, STATS, axis=1)
    cols += spectral.stats(contrast, STATS, axis=(1, 2))
    for x in (bandwidth, rolloff):
        cols += spectral.stats(x, STATS, axis=1)
    m = c.mfcc(N_MFCC, cfg.mfcc_mels, 0.0, None, cfg.top_db)
    d = spectral.delta(m)
    for x in (m, d):
        mean, med, std = spectral.stats(x, STATS, axis=1)  # each (n, 13)
        cols += [v for k in range(N_MFCC) for v in (mean[:, k], med[:, k], std[:, k])]
    out[:] = np.stack(cols, axis=1).astype(np.float32)


HANDCRAFTED = register(
    FeatureKind(
        "handcrafted",
        slot="vector",
        order=50,
        options=(Option("handcrafted", bool, False, f"The 93 hand-crafted statistics of {PUN_2020.short}.", flag="--handcrafted"),),
        enabled=lambda cfg: cfg.handcrafted,
        shape=lambda cfg, n: (len(columns()),),
        compute=_handcrafted,
        columns=columns,
        check=_check,
        check_length=check_delta_length,
        suggested={"handcrafted": True},
        depends_on=("sr", "n_fft", "hop_length", "top_db", "mfcc_mels", "handcrafted"),  # full band, MFCCs always dB
        precise=True,
        description=f"the 93 statistics of {PUN_2020.short} (ZCR, spectral shape and contrast, 13 MFCCs and their deltas)",
    )
)
