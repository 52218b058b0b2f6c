"""musicnn's input: log-compressed mel spectrogram patches, as the original extractor made them.

The ``musicnn`` 0.1.0 extractor (``batch_data`` in ``musicnn/extractor.py``) did::

    audio, sr = librosa.load(file, sr=16000)                       # mono, resampled
    S = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=256, n_fft=512, n_mels=96).T
    S = S.astype(np.float16)
    S = np.log10(10000 * S + 1)
    # non-overlapping 187-frame patches from frame 0; the last partial patch is dropped

with the librosa of 2019 (0.6/0.7): periodic Hann window, ``center=True`` frames padded by
``n_fft // 2`` with ``pad_mode='reflect'`` (librosa 0.10 changed the default to zeros),
power spectrogram (``|X|**2``), Slaney-style mel filterbank (area-normalised triangles,
0..8 kHz). Here:

* The same STFT (float64 FFT of the float32 signal, rounded to complex64, as librosa did)
  and mel filterbank (:func:`genre_cli.features.filters.mel_t`, tested bit-equal to
  ``librosa.filters.mel``).
* ``log10(10000 x + 1)`` computed in **float32** on the float32 mel power. The original cast
  the mel power to float16 first; under numpy 1.x ``10000 * float16_array`` was promoted to
  float32 (value-based casting), so the only effect of the cast was rounding to 11
  significant bits (a change of at most ~2e-4 in the log value), and mel power above 65504
  became inf. Under numpy >= 2 the same line stays in float16 and overflows for any mel
  power above 6.55 (inf -> NaN tags) — that line must not be reproduced.
* Patches: :data:`PATCH_FRAMES` = 187 frames (``librosa.time_to_frames(3, sr=16000,
  n_fft=512, hop_length=256) + 1``, 2.992 s), hop 187 (no overlap), from frame 0; a final
  partial patch is dropped (``tail="drop"``, the original) or replaced by one patch aligned
  to the end of the signal (``tail="end"``).
* Signals shorter than one patch (< 187 frames, about 2.98 s): ``short="repeat"`` (default)
  tiles the frames they have until 187 are filled — what the authors' training did for short
  clips (``"pad_short": "repeat-pad"`` in the checkpoints' ``config.json``); ``short="error"``
  raises :class:`~genre_cli.errors.AudioError` (the original extractor failed on them). An
  empty signal always raises.

:class:`PatchStream` computes the same patches block by block (bounded memory for long files).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from genre_cli.errors import AudioError, UsageError

SR = 16000  #: Hz
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  #: frames per patch (3 s)
LOG_SCALE = 10000.0  #: the "C" of ``log10(C x + 1)``
#: Everything the pre-processing depends on (recorded in converted weight files).
PARAMS = {
    "sr": SR,
    "n_fft": N_FFT,
    "hop": HOP,
    "n_mels": N_MELS,
    "fmin": 0.0,
    "fmax": SR / 2,
    "window": "hann",
    "center": True,
    "pad_mode": "reflect",
    "power": 2.0,
    "mel": "slaney",
    "log": "log10(10000 x + 1)",
    "patch_frames": PATCH_FRAMES,
    "patch_hop": PATCH_FRAMES,
}

_PAD = N_FFT // 2
_SHORT = ("repeat", "error")
_TAIL = ("drop", "end")


def _check(short: str, tail: str, hop_frames: int) -> None:
    if short not in _SHORT:
        raise UsageError(f"short must be one of {', '.join(_SHORT)}, got {short!r}")
    if tail not in _TAIL:
        raise UsageError(f"tail must be one of {', '.join(_TAIL)}, got {tail!r}")
    if isinstance(hop_frames, bool) or not isinstance(hop_frames, int) or hop_frames < 1:
        raise UsageError(f"hop_frames must be an integer >= 1, got {hop_frames!r}")


def _frames_to_logmel(padded: np.ndarray) -> np.ndarray:
    """Log-mel frames ``(n, 96)`` float32 of an already padded float32 signal (every full frame)."""
    from genre_cli.features.filters import hann, mel_t

    n = 1 + (len(padded) - N_FFT) // HOP
    if n <= 0:
        return np.empty((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[: (n - 1) * HOP + 1 : HOP]
    spec = np.fft.rfft(frames * hann(N_FFT, np.float64), axis=-1).astype(np.complex64)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    mel = power @ mel_t(SR, N_FFT, N_MELS, 0.0, None)
    mel *= np.float32(LOG_SCALE)
    mel += np.float32(1.0)
    return np.log10(mel, out=mel)


def logmel(y16k: np.ndarray) -> np.ndarray:
    """musicnn's log-mel spectrogram of a whole signal.

    Parameters
    ----------
    y16k : np.ndarray [shape=(n,)]
        Mono signal at 16 kHz, float, nominally in [-1, 1].

    Returns
    -------
    np.ndarray [shape=(1 + n // 256, 96), dtype=float32]
        ``log10(10000 * mel_power + 1)`` per frame (time-major), >= 0.
    """
    y = _as_signal(y16k)
    return _frames_to_logmel(np.pad(y, _PAD, mode="reflect"))


def _as_signal(y16k: np.ndarray) -> np.ndarray:
    y = np.asarray(y16k)
    if y.ndim != 1:
        raise UsageError(f"expected a mono signal of shape (n,), got shape {y.shape}")
    if len(y) == 0:
        raise AudioError("no audio samples")
    return y.astype(np.float32, copy=False)


def patch_starts(n_frames: int, *, tail: str = "drop", hop_frames: int = PATCH_FRAMES) -> list[int]:
    """First frame of each patch for a spectrogram of ``n_frames`` frames (>= 187).

    Every ``hop_frames`` from 0 while a whole patch fits; with ``tail="end"`` one more
    patch ending at the last frame when the grid leaves frames uncovered.
    """
    starts = list(range(0, n_frames - PATCH_FRAMES + 1, hop_frames))
    if tail == "end" and starts and starts[-1] + PATCH_FRAMES < n_frames:
        starts.append(n_frames - PATCH_FRAMES)
    return starts


def _short_patch(frames: np.ndarray, short: str) -> np.ndarray:
    n = len(frames)
    if short == "error":
        raise AudioError(
            f"too short for musicnn: {n} frames ({(n - 1) * HOP / SR:.2f} s), a patch needs "
            f"{PATCH_FRAMES} frames ({(PATCH_FRAMES - 1) * HOP / SR:.2f} s)"
        )
    reps = -(-PATCH_FRAMES // n)
    return np.tile(frames, (reps, 1))[:PATCH_FRAMES][None]


def patches(spec: np.ndarray, *, short: str = "repeat", tail: str = "drop", hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """Cut a log-mel spectrogram ``(n_frames, 96)`` into patches ``(n_patches, 187, 96)``.

    See the module docstring for ``short`` and ``tail``; ``hop_frames`` < 187 overlaps them.
    """
    _check(short, tail, hop_frames)
    if len(spec) < PATCH_FRAMES:
        return _short_patch(spec, short)
    return np.stack([spec[s : s + PATCH_FRAMES] for s in patch_starts(len(spec), tail=tail, hop_frames=hop_frames)])


def musicnn_input(y16k: np.ndarray, *, short: str = "repeat", tail: str = "drop", hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """The musicnn model input of a 16 kHz mono signal.

    Parameters
    ----------
    y16k : np.ndarray [shape=(n,)]
        Mono signal at 16 kHz (resample first: :func:`genre_cli.audio.load` with
        ``sr=16000``).
    short : {"repeat", "error"}
        Signals shorter than one patch: tile their frames to 187 (the authors' training
        did), or raise :class:`AudioError`.
    tail : {"drop", "end"}
        Frames after the last full patch: dropped (the original), or covered by one more
        patch aligned to the end.
    hop_frames : int
        Patch hop in frames (187: no overlap, the original's default).

    Returns
    -------
    np.ndarray [shape=(n_patches, 187, 96), dtype=float32]
        Patch ``i`` covers frames ``[starts[i], starts[i] + 187)`` (frame ``j`` centred at
        ``j * 256`` samples, i.e. ``j * 16`` ms).

    Raises
    ------
    AudioError
        Empty signal, or shorter than one patch with ``short="error"``.
    """
    _check(short, tail, hop_frames)
    return patches(logmel(y16k), short=short, tail=tail, hop_frames=hop_frames)


class PatchStream:
    """Incremental :func:`musicnn_input`: push 16 kHz blocks, get patches as they complete.

    ``push`` returns ``(starts, patches)`` for the patches completed by the block (start
    frame indices ``(k,)`` and ``(k, 187, 96)`` float32); ``finish`` returns the rest. The
    concatenated output equals ``musicnn_input`` of the concatenated blocks (same frames:
    reflect padding at both ends, the same patch grid, tail and short policies). Memory: the
    frames of one patch plus less than one FFT frame of samples.
    """

    def __init__(self, *, short: str = "repeat", tail: str = "drop", hop_frames: int = PATCH_FRAMES):
        _check(short, tail, hop_frames)
        self.short, self.tail, self.hop_frames = short, tail, hop_frames
        self._head: list[np.ndarray] = []  # samples before the reflect head can be built (< 257)
        self._n_head = 0
        self._buf: np.ndarray | None = None  # padded-signal samples from the next frame's start
        self._last = np.empty(0, dtype=np.float32)  # the last 257 input samples (for the reflect tail)
        self._frames: list[np.ndarray] = []  # log-mel frames not yet emitted (from frame self._f0)
        self._f0 = 0  # index of self._frames[0]
        self._next = 0  # start frame of the next patch
        self._last_start: int | None = None  # start frame of the last patch emitted
        self.n_samples = 0
        self.n_frames = 0

    def _remember_tail(self, y: np.ndarray) -> None:
        self._last = np.concatenate([self._last, y])[-(_PAD + 1) :]

    def push(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add 16 kHz mono samples; return ``(starts, patches)`` completed so far."""
        y = np.asarray(block, dtype=np.float32)
        if y.ndim != 1:
            raise UsageError(f"expected mono blocks of shape (n,), got shape {y.shape}")
        if not len(y):
            return self._emit(final=False)
        self.n_samples += len(y)
        self._remember_tail(y)
        if self._buf is None:
            self._head.append(y)
            self._n_head += len(y)
            if self._n_head <= _PAD:
                return self._emit(final=False)
            y = np.concatenate(self._head)
            self._head = []
            self._buf = np.concatenate([y[_PAD:0:-1], y])  # reflect head: y[256], ..., y[1]
        else:
            self._buf = np.concatenate([self._buf, y])
        self._take_frames()
        return self._emit(final=False)

    def _take_frames(self) -> None:
        spec = _frames_to_logmel(self._buf)
        if len(spec):
            self._frames.append(spec)
            self.n_frames += len(spec)
            self._buf = self._buf[len(spec) * HOP :]

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """End of the signal: the remaining patches (reflect-padded tail, tail/short policy).

        Raises
        ------
        AudioError
            No samples at all, or too short with ``short="error"``.
        """
        if self.n_samples == 0:
            raise AudioError("no audio samples")
        if self._buf is None:  # fewer than 257 samples in all: pad the whole (tiny) signal at once
            spec = logmel(np.concatenate(self._head))
            self._frames, self.n_frames = [spec], len(spec)
        else:
            self._buf = np.concatenate([self._buf, self._last[-2::-1][:_PAD]])  # reflect tail: y[-2], y[-3], ...
            self._take_frames()
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> tuple[np.ndarray, np.ndarray]:
        out_s: list[int] = []
        out_p: list[np.ndarray] = []
        if self._frames:
            frames = np.concatenate(self._frames) if len(self._frames) > 1 else self._frames[0]
            end = self._f0 + len(frames)  # frames known so far
            while self._next + PATCH_FRAMES <= end:
                out_s.append(self._next)
                out_p.append(frames[self._next - self._f0 : self._next - self._f0 + PATCH_FRAMES])
                self._next += self.hop_frames
            if final and end < PATCH_FRAMES:  # no patch at all: frames is the whole spectrogram
                out_s.append(0)
                out_p.append(_short_patch(frames, self.short)[0])
            elif final and self.tail == "end":
                last = out_s[-1] if out_s else self._last_start
                if last is not None and last + PATCH_FRAMES < end:
                    out_s.append(end - PATCH_FRAMES)
                    out_p.append(frames[len(frames) - PATCH_FRAMES :])
            if out_s:
                self._last_start = out_s[-1]
            # keep the frames a later patch can use (tail="end": also the last 187)
            keep = self._next if self.tail == "drop" else min(self._next, end - PATCH_FRAMES)
            keep = max(keep, self._f0)
            frames = frames[keep - self._f0 :]
            self._f0 = keep
            self._frames = [frames] if len(frames) else []
        if not out_p:
            return np.empty(0, dtype=np.int64), np.empty((0, PATCH_FRAMES, N_MELS), dtype=np.float32)
        return np.asarray(out_s, dtype=np.int64), np.stack(out_p)


def stream_patches(blocks: Iterable[np.ndarray], **kwargs) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(starts, patches)`` per block of a stream of 16 kHz blocks (see :class:`PatchStream`)."""
    ps = PatchStream(**kwargs)
    for b in blocks:
        s, p = ps.push(b)
        if len(p):
            yield s, p
    s, p = ps.finish()
    if len(p):
        yield s, p
