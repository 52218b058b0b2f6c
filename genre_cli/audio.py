"""Audio decoding, the one decoder of the toolkit: probe, load a whole file, or stream it in blocks.

``segment`` loads whole tracks (:func:`load`), ``predict`` streams files of any length
(:func:`stream`), ``fetch`` reads headers (:func:`probe`); all three open a file the same way
and report the same reasons:

* libsndfile (``soundfile``) decodes wav, flac, ogg, mp3 (1.1+), aiff, au;
* files libsndfile cannot open that need ffmpeg (m4a, aac, opus, wma; mp3 with an older
  libsndfile) are piped through ``ffmpeg`` as float32 at their native rate and channel count
  (``ffprobe`` reads both first); without ffmpeg they are reported as needing it;
* every decoder's output is downmixed by :func:`downmix` (the channel mean) and resampled with
  soxr (:func:`resample`; :func:`stream` uses soxr's streaming resampler, whose output equals
  resampling the whole file at once);
* a file is checked before any decoder sees it (:func:`check_file`: missing, empty, FIFO,
  link loop, unreadable), and after (no samples, NaN/Inf or samples far outside [-1, 1]:
  :func:`check_samples`; decoded well short of the length its header announces:
  :func:`check_complete`). Failures are :class:`~genre_cli.errors.AudioError`
  naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_cli.errors import AudioError

#: File extensions treated as audio when walking folders.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".au", ".aiff", ".aif", ".m4a", ".aac", ".opus", ".wma"})
#: Extensions libsndfile cannot read; they need ffmpeg.
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".opus", ".wma"})
#: Seconds of native-rate audio :func:`stream` decodes per block.
BLOCK_SECONDS = 30.0


@dataclass(frozen=True)
class AudioInfo:
    """What a header says about an audio file."""

    duration: float  #: seconds
    sr: int  #: native sample rate, Hz
    channels: int


def is_audio_path(path: Path) -> bool:
    """True when ``path``'s extension is a known audio extension (case-insensitive)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


# ----------------------------------------------------------------------------- the public functions


def probe(path: str | Path) -> AudioInfo:
    """Read duration, sample rate and channel count from the file header.

    Raises
    ------
    AudioError
        If the file is missing, empty, or not decodable audio.
    """
    import soundfile as sf

    path = Path(path)
    check_file(path)
    try:
        info = sf.info(os.fsencode(path))  # bytes: a file name that is not UTF-8 stays openable
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        if _needs_ffmpeg(path):
            return _ffprobe(path)
        raise AudioError(f"{path}: not decodable audio ({open_reason(exc)})") from None
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
        Missing, unreadable or non-regular (FIFO, symlink loop), empty, undecodable,
        truncated (decoded well short of the header's length), non-finite audio, or samples
        far outside [-1, 1] (:func:`check_samples`).
    """
    path = Path(path)
    with _open(path) as src:
        data, expected = src.read_all(start=start, duration=duration)
        native = src.sr
    if data.size == 0:
        raise AudioError(f"{path}: no audio samples")
    check_complete(path, len(data), expected, native)
    y = downmix(data)
    check_samples(path, y)
    if sr is not None and sr != native:
        y = resample(y, native, sr)
    else:
        sr = native
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


#: Largest sample magnitude accepted (40 dB above full scale). Decoders return floats that may
#: pass 1.0 a little (inter-sample peaks of a loud master); far beyond it the file is not audio
#: in [-1, 1] -- typically a float file written without scaling (int16 values: up to 32767) --
#: and the features it gives are meaningless or overflow.
MAX_PEAK = 100.0


def check_samples(path: str | Path, y: np.ndarray) -> None:
    """Raise :class:`~genre_cli.errors.AudioError` when ``y`` has NaN/Inf samples or samples
    beyond :data:`MAX_PEAK` in magnitude."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0  # one pass: NaN and Inf make the peak non-finite
    if not np.isfinite(peak):
        raise AudioError(f"{path}: audio contains NaN or Inf samples")
    if peak > MAX_PEAK:
        raise AudioError(
            f"{path}: samples reach {peak:.3g}, far outside [-1, 1] (a float file written without scaling?); "
            "scale it to [-1, 1] and try again"
        )


def stream(path: str | Path, sr: int, *, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block to mono float32 at ``sr`` Hz (memory: one block).

    The concatenated blocks equal :func:`load` of the whole file (same decoder, same downmix,
    soxr's streaming resampler, to float rounding).

    Raises
    ------
    AudioError
        As :func:`load`; raised by the iteration, possibly after some blocks were yielded.
    """
    import soxr

    path = Path(path)
    with _open(path) as src:
        native = src.sr
        rs = soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ") if native != sr else None
        total = 0
        for data in src.blocks(max(1, int(block_seconds * native))):
            y = downmix(data)
            check_samples(path, y)
            total += len(y)
            out = y if rs is None else rs.resample_chunk(y, last=False)
            if len(out):
                yield np.ascontiguousarray(out, dtype=np.float32)
        if total == 0:
            raise AudioError(f"{path}: no audio samples")
        check_complete(path, total, src.expected, native)
        if rs is not None:
            tail = rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if len(tail):
                yield np.ascontiguousarray(tail, dtype=np.float32)


def downmix(data: np.ndarray) -> np.ndarray:
    """Mono float32 ``(n,)`` of ``(n, channels)`` samples: the channel mean.

    Equals ``data.mean(axis=1, dtype=np.float32)`` (same summation order, then one
    division), but sums channel columns instead of reducing each 2-value row, which numpy
    does ~10x slower (2 s for 35 min of 44.1 kHz stereo). A mono file gives a view.
    """
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    if data.shape[1] == 1:
        return data[:, 0]
    y = data[:, 0].astype(np.float32)
    for c in range(1, data.shape[1]):
        y += data[:, c]
    y /= np.float32(data.shape[1])
    return y


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a 1-D signal with soxr (high quality)."""
    import soxr

    if sr_in == sr_out:
        return y
    return soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def readable_formats() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What this machine decodes: ``(names, extensions)``, e.g. ``("wav", "flac", "ogg", "mp3",
    "aiff", "au")`` and every extension of :data:`AUDIO_EXTENSIONS` without its dot; the ffmpeg
    formats (m4a, aac, opus, wma) only when :func:`ffmpeg_available`."""
    ffmpeg = ffmpeg_available()
    names = ("wav", "flac", "ogg", "mp3", "aiff", "au") + (("m4a", "aac", "opus", "wma") if ffmpeg else ())
    exts = sorted(e[1:] for e in AUDIO_EXTENSIONS if ffmpeg or e not in FFMPEG_EXTENSIONS)
    return names, tuple(exts)


def ffmpeg_available() -> bool:
    """True when both ``ffmpeg`` and ``ffprobe`` are on the PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


# ----------------------------------------------------------------------------- sources


class _SoundFile:
    """A file libsndfile decodes."""

    def __init__(self, path: Path, f):
        self.path, self.f = path, f
        self.sr = int(f.samplerate)
        self.expected = int(f.frames)  # 0 or SF_COUNT_MAX when unknown: not checked

    def read_all(self, *, start: float, duration: float | None) -> tuple[np.ndarray, int]:
        first = int(round(start * self.sr)) if start else 0
        try:
            if first:
                self.f.seek(first)
            frames = -1 if duration is None else int(round(duration * self.sr))
            data = self.f.read(frames, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"{self.path}: not decodable audio ({open_reason(exc)})") from None
        return data, self.expected - first if frames < 0 else min(frames, self.expected - first)

    def blocks(self, n: int) -> Iterator[np.ndarray]:
        while True:
            try:
                data = self.f.read(n, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(f"{self.path}: not decodable audio ({open_reason(exc)})") from None
            if not len(data):
                return
            yield data

    def close(self) -> None:
        self.f.close()


class _Ffmpeg:
    """A file piped through ``ffmpeg`` as float32 at its native rate and channel count."""

    def __init__(self, path: Path):
        self.path = path
        info = _ffprobe(path)
        self.sr, self.channels = info.sr, info.channels
        self.expected = 0  # container durations are estimates: not checked
        self.proc: subprocess.Popen | None = None

    def _start(self, start: float = 0.0, duration: float | None = None) -> subprocess.Popen:
        cmd = ["ffmpeg", "-v", "error", "-nostdin"]
        if start:
            cmd += ["-ss", f"{start:.6f}"]
        cmd += ["-i", str(self.path), "-vn"]
        if duration is not None:
            cmd += ["-t", f"{duration:.6f}"]
        cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return self.proc

    def _frames(self, buf: bytes) -> np.ndarray:
        width = 4 * self.channels
        return np.frombuffer(buf[: len(buf) // width * width], dtype="<f4").astype(np.float32).reshape(-1, self.channels)

    def read_all(self, *, start: float, duration: float | None) -> tuple[np.ndarray, int]:
        proc = self._start(start, duration)
        data = self._frames(proc.stdout.read())
        self._finish()
        return data, 0

    def blocks(self, n: int) -> Iterator[np.ndarray]:
        proc = self._start()
        while buf := proc.stdout.read(4 * self.channels * n):
            yield self._frames(buf)
        self._finish()

    def _finish(self) -> None:
        err = self.proc.stderr.read().decode(errors="replace").strip()
        if self.proc.wait() != 0:
            last = (err.splitlines() or [f"exit {self.proc.returncode}"])[-1][:200]
            raise AudioError(f"{self.path}: not decodable audio (ffmpeg: {last})")

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


@contextlib.contextmanager
def _open(path: Path) -> Iterator[_SoundFile | _Ffmpeg]:
    """The source that decodes ``path``: libsndfile, else ffmpeg where it applies; closed on exit."""
    import soundfile as sf

    check_file(path)
    try:
        src: _SoundFile | _Ffmpeg = _SoundFile(path, sf.SoundFile(os.fsencode(path)))  # bytes: see probe()
    except Exception as exc:
        if not _needs_ffmpeg(path):
            raise AudioError(f"{path}: not decodable audio ({open_reason(exc)})") from None
        src = _Ffmpeg(path)
    try:
        yield src
    finally:
        src.close()


def _needs_ffmpeg(path: Path) -> bool:
    """True when a file libsndfile failed on is one ffmpeg should decode: containers libsndfile
    never reads (m4a, aac, opus, wma), and mp3 with a libsndfile older than 1.1. Raises
    :class:`AudioError` when ffmpeg is not installed."""
    ext = path.suffix.lower()
    needed = ext in FFMPEG_EXTENSIONS
    if ext == ".mp3":
        import soundfile as sf

        needed = "MP3" not in sf.available_formats()
    if needed and not ffmpeg_available():
        raise AudioError(f"{path}: {path.suffix} files need ffmpeg, which is not installed (e.g. apt-get install ffmpeg)")
    return needed


def _ffprobe(path: Path) -> AudioInfo:
    """Sample rate, channels and duration of the first audio stream (``ffprobe``)."""
    try:
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=sample_rate,channels:format=duration",
                "-of",
                "default=noprint_wrappers=1",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AudioError(f"{path}: not decodable audio (ffprobe: {error_reason(exc)})") from None
    fields = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
    try:
        sr, channels = int(fields["sample_rate"]), int(fields["channels"])
        duration = float(fields.get("duration", "nan"))
    except (KeyError, ValueError):
        msg = (probe.stderr.strip().splitlines() or ["no audio stream"])[-1]
        raise AudioError(f"{path}: not decodable audio ({msg[:200]})") from None
    if sr <= 0 or channels <= 0:
        raise AudioError(f"{path}: no audio samples")
    return AudioInfo(duration=duration if np.isfinite(duration) else 0.0, sr=sr, channels=channels)


# ----------------------------------------------------------------------------- checks


def check_file(path: Path) -> None:
    """Raise :class:`AudioError` unless ``path`` is a non-empty regular file we can open.

    Checked before any decoder sees the path: a FIFO would block ``open`` forever, a
    symlink loop or dangling link would read as "no such file", and libsndfile reports an
    unreadable file as "does not exist".
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise AudioError(f"{path}: broken symbolic link (its target does not exist)") from None
        raise AudioError(f"{path}: no such file") from None
    except OSError as exc:
        what = "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot stat ({exc.strerror})"
        raise AudioError(f"{path}: {what}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a named pipe" if stat.S_ISFIFO(st.st_mode) else "a special file"
        raise AudioError(f"{path}: not a regular file ({kind})")
    if st.st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        raise AudioError(f"{path}: cannot be read ({exc.strerror}, errno {exc.errno})") from None


#: libsndfile's length for a stream of unknown length (SF_COUNT_MAX): no completeness check.
_UNKNOWN_FRAMES = 1 << 62


def check_complete(path: Path, got: int, expected: int, sr: int) -> None:
    """Raise :class:`AudioError` when decoding stopped well short of the length the header
    announces (a truncated or partly corrupt file: libsndfile's mp3 decoder, for one,
    stops quietly at the first bad frame).

    Tolerates a shortfall of up to 1 % of the announced length or 0.1 s (encoder padding,
    estimated mp3 lengths); ``expected <= 0`` or unknown lengths are not checked.
    """
    if expected <= 0 or expected >= _UNKNOWN_FRAMES or got >= expected:
        return
    if expected - got > max(0.01 * expected, 0.1 * sr):
        raise AudioError(f"{path}: truncated or corrupt (decoded {got / sr:.2f} s of the {expected / sr:.2f} s its header announces)")


def open_reason(exc: BaseException) -> str:
    """:func:`error_reason` of a decoder's failure, with libsndfile's misleading "File does
    not exist or is not a regular file" (what it says about an existing file it cannot
    parse, e.g. text named .mp3) replaced by what it means."""
    reason = error_reason(exc)
    if "does not exist" in reason or "not recognised" in reason.lower():
        return "not a recognised audio format, or corrupt"
    return reason


def error_reason(exc: BaseException) -> str:
    """One line (at most 200 characters) saying why ``exc`` happened, for per-file messages."""
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:200]
