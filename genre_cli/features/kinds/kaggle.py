"""``kaggle``: the 57 values of the Kaggle GTZAN ``features_30_sec.csv`` table."""

from __future__ import annotations

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.features import spectral
from genre_cli.features.kind import FeatureKind, register
from genre_cli.options import Option

TOP_DB = 80.0  # librosa.feature.mfcc / power_to_db default, used by the Kaggle table
N_MFCC = 20
SCALARS = ("chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate", "harmony", "perceptr")


def columns(cfg=None) -> list[str]:
    """Exactly the Kaggle GTZAN ``features_30_sec.csv`` columns, in order, without ``filename``,
    ``length`` and ``label`` (57)."""
    cols = [f"{f}_{s}" for f in SCALARS for s in ("mean", "var")]
    cols.append("tempo")
    cols += [f"mfcc{k}_{s}" for k in range(1, N_MFCC + 1) for s in ("mean", "var")]
    return cols


def _check(cfg) -> None:
    if cfg.kaggle and cfg.n_fft // 2 + 1 < 128:
        raise UsageError(f"kaggle needs n_fft//2+1 >= 128 (128 mel bands), got n_fft={cfg.n_fft}")


def _kaggle(c, cfg, out: np.ndarray) -> None:
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

    sr, n_fft, hop = cfg.sr, cfg.n_fft, cfg.hop_length
    centroid, bandwidth, rolloff = c.shape
    chroma = spectral.chroma(c.power, sr, n_fft)
    rms = spectral.rms(c.y, n_fft, hop)
    # harmonic / percussive waveforms from the shared STFT (= librosa.effects.hpss(y))
    spec_l = c.spec.transpose(0, 2, 1)  # librosa layout (n, F, t)
    harm, perc = librosa.decompose.hpss(spec_l)
    y_h = librosa.istft(harm, n_fft=n_fft, hop_length=hop, length=c.y.shape[-1], dtype=np.float32)
    y_p = librosa.istft(perc, n_fft=n_fft, hop_length=hop, length=c.y.shape[-1], dtype=np.float32)
    # tempo as librosa.beat.beat_track(y=y): onset envelope (median over 128 mel bands of the
    # log-mel difference, per-segment top_db=80) then feature.tempo
    logmel = c.logmel(128, 0.0, None, TOP_DB)
    oenv = librosa.onset.onset_strength(S=logmel.transpose(0, 2, 1), sr=sr, hop_length=hop, n_fft=n_fft, aggregate=np.median)
    has_onset = oenv.any(axis=-1)
    tempo = np.zeros(c.y.shape[0])
    if has_onset.any():
        tempo[has_onset] = librosa.feature.tempo(onset_envelope=oenv[has_onset], sr=sr, hop_length=hop, start_bpm=120.0).reshape(-1)
    cols: list[np.ndarray] = []
    cols += spectral.stats(chroma, ("mean", "var"), axis=(1, 2))
    for x in (rms, centroid, bandwidth, rolloff, c.zcr, y_h, y_p):
        cols += spectral.stats(x, ("mean", "var"), axis=1)
    cols.append(tempo)
    m = c.mfcc(N_MFCC, 128, 0.0, None, TOP_DB)
    mean, var = spectral.stats(m, ("mean", "var"), axis=1)
    cols += [v for k in range(N_MFCC) for v in (mean[:, k], var[:, k])]
    out[:] = np.stack(cols, axis=1).astype(np.float32)


KAGGLE = register(
    FeatureKind(
        "kaggle",
        slot="vector",
        order=60,
        options=(Option("kaggle", bool, False, "The 57 values of the Kaggle GTZAN table.", flag="--kaggle"),),
        enabled=lambda cfg: cfg.kaggle,
        shape=lambda cfg, n: (len(columns()),),
        compute=_kaggle,
        columns=columns,
        check=_check,
        suggested={"kaggle": True},
        depends_on=("sr", "n_fft", "hop_length", "kaggle"),  # full band, 128 mel bands and top_db 80 fixed
        precise=True,
        description="the 57 values of the Kaggle GTZAN features_30_sec.csv table (chroma, RMS, spectral shape, HPSS, tempo, 20 MFCCs)",
    )
)
