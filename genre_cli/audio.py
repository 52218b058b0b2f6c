"""Audio decoding: probe, load (mono, resampled), with typed errors.

soundfile (libsndfile) decodes wav/flac/ogg/mp3; other containers fall back to librosa's
audioread/ffmpeg path when available. Resampling uses soxr (high quality, fast).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_cli.errors import AudioError

#: File extensions treated as audio when walking folders.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".au", ".aiff", ".aif", ".m4a", ".aac", ".opus", ".wma"})
#: Extensions libsndfile cannot read; they need ffmpeg.
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".opus", ".wma"})


@dataclass(frozen=True)
class AudioInfo:
    """What a header says about an audio file."""

    duration: float  #: seconds
    sr: int  #: native sample rate, Hz
    channels: int


def is_audio_path(path: Path) -> bool:
    """True when ``path``'s extension is a known audio extension (case-insensitive)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def probe(path: str | Path) -> AudioInfo:
    """Read duration, sample rate and channel count from the file header.

    Raises
    ------
    AudioError
        If the file is missing, empty, or not decodable audio.
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        if _ffmpeg_fallback(path):
            y, sr = load(path, sr=None)
            return AudioInfo(duration=len(y) / sr, sr=int(sr), channels=1)
        raise AudioError(f"{path}: not decodable audio ({_reason(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: no audio samples")
    return AudioInfo(duration=info.frames / info.samplerate, sr=int(info.samplerate), channels=int(info.channels))


def load(path: str | Path, *, sr: int | None = 22050, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``path`` to a mono float32 signal, resampled to ``sr``.

    Parameters
    ----------
    path : str or Path
        Audio file.
    sr : int > 0 or None
        Target sample rate in Hz; ``None`` keeps the native rate.
    start : float >= 0
        Offset in seconds.
    duration : float > 0 or None
        Seconds to read; ``None`` reads to the end.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Mono signal in [-1, 1], finite.
    sr : int
        Its sample rate.

    Raises
    ------
    AudioError
        Missing, empty, undecodable, silent-length or non-finite audio.
    """
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        with sf.SoundFile(str(path)) as f:
            native = f.samplerate
            if start:
                f.seek(int(round(start * native)))
            frames = -1 if duration is None else int(round(duration * native))
            data = f.read(frames, dtype="float32", always_2d=True)
    except Exception as exc:
        if not _ffmpeg_fallback(path):
            raise AudioError(f"{path}: not decodable audio ({_reason(exc)})") from None
        data, native = _load_ffmpeg(path, start=start, duration=duration)
    if data.size == 0:
        raise AudioError(f"{path}: no audio samples")
    y = data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    if sr is not None and sr != native:
        y = resample(y, native, sr)
    else:
        sr = native
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a 1-D signal with soxr (high quality)."""
    import soxr

    if sr_in == sr_out:
        return y
    return soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def _load_ffmpeg(path: Path, *, start: float, duration: float | None) -> tuple[np.ndarray, int]:
    import shutil

    if shutil.which("ffmpeg") is None:
        raise AudioError(f"{path}: {path.suffix} needs ffmpeg, which is not installed (apt-get install ffmpeg)")
    import warnings

    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y, native = librosa.load(str(path), sr=None, mono=True, offset=start, duration=duration)
    except Exception as exc:
        raise AudioError(f"{path}: not decodable audio ({_reason(exc)})") from None
    return y[:, None], int(native)


def _ffmpeg_fallback(path: Path) -> bool:
    """True when a file libsndfile failed on should be retried with ffmpeg: containers it
    never reads (m4a, aac, opus, wma), and mp3 with a libsndfile older than 1.1."""
    ext = path.suffix.lower()
    if ext in FFMPEG_EXTENSIONS:
        return True
    if ext == ".mp3":
        import soundfile as sf

        return "MP3" not in sf.available_formats()
    return False


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"{path}: cannot stat ({exc.strerror})") from None
    if size == 0:
        raise AudioError(f"{path}: empty file")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:200]
