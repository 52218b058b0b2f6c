"""Time x feature matrices from the shared STFT: ``mel``, ``stft``, ``mfcc``, ``mfcc_frames``."""

from __future__ import annotations

import functools

import numpy as np

from genre_cli.errors import UsageError
from genre_cli.features import spectral
from genre_cli.features.kind import FeatureKind, register
from genre_cli.features.stft import check_delta_length, check_mfcc_mels, n_frames
from genre_cli.options import Option
from genre_cli.papers import SCHRADER_2021


def _n_bins(cfg) -> int:
    return cfg.n_fft // 2 + 1


# ----------------------------------------------------------------------------- mel


def _mel_check(cfg) -> None:
    if cfg.mel > _n_bins(cfg):
        raise UsageError(f"mel must be in [0, n_fft//2+1 = {_n_bins(cfg)}], got {cfg.mel}")


def _mel(c, cfg, out: np.ndarray) -> None:
    if cfg.db:
        out[:] = c.logmel(cfg.mel, cfg.fmin, cfg.fmax, cfg.top_db)
    else:
        out[:] = c.mel(cfg.mel, cfg.fmin, cfg.fmax)


MEL = register(
    FeatureKind(
        "mel",
        slot="spectrogram",
        order=10,
        options=(
            Option(
                "mel",
                int,
                0,
                "Log-mel spectrogram with N bands (Slaney mel scale, power 2, dB re 1.0).",
                flag="--mel",
                minimum=0,
                metavar="N",
            ),
        ),
        enabled=lambda cfg: cfg.mel > 0,
        shape=lambda cfg, n: (n_frames(n, cfg), cfg.mel),
        compute=_mel,
        check=_mel_check,
        suggested={"mel": 128},
        depends_on=("sr", "n_fft", "hop_length", "fmin", "fmax", "db", "top_db", "mel"),
        description="log-mel spectrogram (n_frames, mel); dB re 1.0, or power with --power",
    )
)


# ----------------------------------------------------------------------------- stft


def _stft(c, cfg, out: np.ndarray) -> None:
    if cfg.db:
        spectral.to_db(c.power, cfg.top_db, out=out)
    else:
        out[:] = c.mag


STFT = register(
    FeatureKind(
        "stft",
        slot="spectrogram",
        order=20,
        options=(Option("stft", bool, False, "Log-magnitude STFT (n_fft/2+1 bins).", flag="--stft"),),
        enabled=lambda cfg: cfg.stft,
        shape=lambda cfg, n: (n_frames(n, cfg), _n_bins(cfg)),
        compute=_stft,
        suggested={"stft": True},
        depends_on=("sr", "n_fft", "hop_length", "db", "top_db", "stft"),
        description="log-magnitude STFT (n_frames, n_fft/2+1); dB, or linear magnitude with --power",
    )
)


# ----------------------------------------------------------------------------- mfcc


def _mfcc_check(cfg) -> None:
    if cfg.mfcc:
        check_mfcc_mels(cfg, "--mfcc")
    if cfg.mfcc > cfg.mfcc_mels:
        raise UsageError(f"mfcc must be in [0, mfcc_mels = {cfg.mfcc_mels}], got {cfg.mfcc}")
    if cfg.deltas and cfg.mfcc == 0:
        raise UsageError("deltas needs mfcc > 0")


def _mfcc_length(cfg, n: int, t: int) -> None:
    if cfg.deltas:
        check_delta_length(cfg, n, t)


def _mfcc(c, cfg, out: np.ndarray) -> None:
    m = c.mfcc(cfg.mfcc, cfg.mfcc_mels, cfg.fmin, cfg.fmax, cfg.top_db)
    if cfg.deltas:
        k = cfg.mfcc
        out[..., :k] = m
        out[..., k : 2 * k] = spectral.delta(m, 1)
        out[..., 2 * k :] = spectral.delta(m, 2)
    else:
        out[:] = m


MFCC = register(
    FeatureKind(
        "mfcc",
        slot="spectrogram",
        order=30,
        options=(
            Option("mfcc", int, 0, "N MFCCs per frame.", flag="--mfcc", minimum=0, metavar="N"),
            Option("deltas", bool, False, "Append MFCC deltas and delta-deltas (3N columns).", flag="--deltas"),
        ),
        enabled=lambda cfg: cfg.mfcc > 0,
        shape=lambda cfg, n: (n_frames(n, cfg), cfg.mfcc * (3 if cfg.deltas else 1)),
        compute=_mfcc,
        check=_mfcc_check,
        check_length=_mfcc_length,
        suggested={"mfcc": 20},
        depends_on=("sr", "n_fft", "hop_length", "fmin", "fmax", "top_db", "mfcc_mels", "mfcc", "deltas"),
        slug=lambda cfg: f"mfcc{cfg.mfcc}d" if cfg.deltas else f"mfcc{cfg.mfcc}",
        description="MFCCs per frame (n_frames, mfcc), or [mfcc | delta | delta2] with --deltas",
    )
)


# ----------------------------------------------------------------------------- mfcc_frames


@functools.lru_cache(maxsize=64)
def pool_groups(t: int, n_samples: int, hop: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Start frame and frame count of each of ``n_steps`` equal blocks of a segment.

    Frame ``j`` (centre at sample ``j * hop``) belongs to block
    ``min(j * hop * n_steps // n_samples, n_steps - 1)``.
    """
    block = np.minimum((np.arange(t, dtype=np.int64) * hop * n_steps) // n_samples, n_steps - 1)
    counts = np.bincount(block, minlength=n_steps)
    if np.any(counts == 0):
        raise UsageError(
            f"mfcc_frames: {n_steps} steps over {n_samples} samples leaves steps without any frame (hop {hop})",
            hint=f"use at most {max(1, n_samples // hop)} steps or longer segments",
        )
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    starts.flags.writeable = False
    counts = counts.astype(np.float32)
    counts.flags.writeable = False
    return starts, counts


def _parse_steps(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 0)
    try:
        a, b = text.lower().split("x")
        return (int(a), int(b))
    except ValueError:
        raise UsageError(f"--mfcc-frames expects STEPSxN such as 30x30, got {text!r}") from None


def _frames_check(cfg) -> None:
    mf = cfg.mfcc_frames
    if mf != (0, 0):
        if mf[0] < 1 or mf[1] < 1:
            raise UsageError(f"mfcc_frames must be (0, 0) or both positive, got {mf}")
        check_mfcc_mels(cfg, "--mfcc-frames")
        if mf[1] > cfg.mfcc_mels:
            raise UsageError(f"mfcc_frames n_mfcc {mf[1]} exceeds mfcc_mels {cfg.mfcc_mels}")


def _mfcc_frames(c, cfg, out: np.ndarray) -> None:
    steps, k = cfg.mfcc_frames
    m = c.mfcc(k, cfg.mfcc_mels, cfg.fmin, cfg.fmax, cfg.top_db)
    starts, counts = pool_groups(m.shape[1], c.y.shape[1], cfg.hop_length, steps)
    out[:] = np.add.reduceat(m, starts, axis=1) / counts[:, None]


MFCC_FRAMES = register(
    FeatureKind(
        "mfcc_frames",
        slot="spectrogram",
        order=40,
        options=(
            Option(
                "mfcc_frames",
                tuple,
                (0, 0),
                f"STEPSxN: N MFCCs averaged over STEPS equal blocks of the segment ({SCHRADER_2021.short}: 30x30).",
                flag="--mfcc-frames",
                cli_type=str,
                cli_default=None,
                parse=_parse_steps,
                show=lambda v: f"{v[0]}x{v[1]}",
                metavar="STEPSxN",
            ),
        ),
        enabled=lambda cfg: cfg.mfcc_frames != (0, 0),
        shape=lambda cfg, n: tuple(cfg.mfcc_frames),
        compute=_mfcc_frames,
        check=_frames_check,
        check_length=lambda cfg, n, t: pool_groups(t, n, cfg.hop_length, cfg.mfcc_frames[0]) and None,
        suggested={"mfcc_frames": (30, 30)},
        depends_on=("sr", "n_fft", "hop_length", "fmin", "fmax", "top_db", "mfcc_mels", "mfcc_frames"),
        slug=lambda cfg: f"mfccframes{cfg.mfcc_frames[0]}x{cfg.mfcc_frames[1]}",
        description=f"fixed-size MFCC sequence (steps, n_mfcc) of {SCHRADER_2021.short}'s LSTM, whatever the segment length",
    )
)
