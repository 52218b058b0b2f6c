"""``predict``: classify audio files with a model artifact; streams one result per file.

The model file holds everything needed (window length and hop, sample rate, feature
parameters, normalisation statistics, weights), so nothing else is read.

Pipeline
--------
* **Streaming decode.** Each file is decoded block by block (``soundfile``; ``ffmpeg``
  for m4a/aac/opus/wma when installed), downmixed to mono and resampled with soxr's
  streaming resampler, whose output is identical to resampling the whole file at once.
  A one-hour recording never sits in memory: only one block and the samples of the
  windows still open are kept.
* **Windows.** The model's window length and hop, over the whole file: every full window
  at the hop, plus, when the hop grid leaves a tail uncovered, one full window aligned
  to the end of the file (so no window is mostly zero padding). A file shorter than one
  window gives one zero-padded window. See :func:`plan_windows`.
* **Workers.** Decoding and featurizing run in ``jobs`` worker threads (numpy, soxr,
  libsndfile and the FFT release the GIL); feature chunks go through a bounded queue.
* **Batched inference.** The caller's thread loads the model once and runs it on batches
  that mix windows of several files.
* **Aggregation.** Whole-file probabilities come from all windows with
  :func:`genre_cli.inference.aggregate_tracks`, the function ``evaluate`` uses for
  track-level scores (``mean`` of window probabilities by default, or ``vote``).

Results are yielded in input order, each as soon as it and all files before it are done.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre_cli.audio import FFMPEG_EXTENSIONS, check_complete, check_file, downmix, error_reason, is_audio_path, open_reason
from genre_cli.errors import AudioError, GenreError, InputError, UsageError
from genre_cli.inference import Classifier, aggregate_tracks, load_classifier
from genre_cli.parallel import available_cores
from genre_cli.segment import SegmentConfig, window_starts

#: Windows featurized together (one :func:`genre_cli.features.compute` call).
FEATURE_CHUNK = 32
#: Windows per forward pass (may mix files).
BATCH_SIZE = 128
#: Seconds of native-rate audio decoded per block.
BLOCK_SECONDS = 30.0


@dataclass
class Prediction:
    """Whole-file result.

    Attributes
    ----------
    proba : np.ndarray [shape=(n_classes,)]
        Aggregated probabilities (``vote``: fraction of windows, ties broken by mean).
    windows : list of (start_s, end_s, proba)
        Per-window probabilities (only when asked for a timeline).
    """

    path: Path
    duration: float
    labels: list[str]
    proba: np.ndarray
    n_windows: int = 0
    windows: list[tuple[float, float, np.ndarray]] = field(default_factory=list)

    def top(self, k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, best first."""
        return top_k(self.proba, self.labels, k)


@dataclass
class Failure:
    """A file that could not be classified, and why (the reason starts with the path)."""

    path: Path
    reason: str


@dataclass
class WalkStats:
    """Counts from walking the inputs (files that are not audio are ignored, not errors)."""

    ignored: int = 0


def top_k(proba: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """``[(label, probability), ...]`` of the ``k`` largest entries of ``proba``."""
    order = np.argsort(-proba, kind="stable")[:k]
    return [(labels[i], float(proba[i])) for i in order]


def iter_inputs(paths: Iterable[str], stats: WalkStats) -> Iterator[Path]:
    """Expand files and folders lazily (folders recursive, audio by extension).

    Explicit files are always tried, whatever their extension (a failure names the
    reason). Folders are walked in sorted order without following symlinked directories;
    their non-audio files are counted in ``stats.ignored``.
    """
    for raw in paths:
        raw = raw.rstrip("\r\n")
        if not raw:
            continue
        p = Path(raw)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
                dirnames.sort()
                for name in sorted(filenames):
                    fp = Path(dirpath) / name
                    if is_audio_path(fp):
                        yield fp
                    else:
                        stats.ignored += 1
        else:
            yield p


def windows_for(clf: Classifier) -> SegmentConfig:
    """The model's window length, hop and sample rate (fixed grid over the whole file)."""
    cfg = SegmentConfig.from_params(clf.segment_config)
    return SegmentConfig(sr=cfg.sr, seconds=cfg.seconds, hop=cfg.hop, frames=cfg.frames, frame_hop=cfg.frame_hop, policy="fixed", last="drop")


def plan_windows(n: int, seg: SegmentConfig) -> list[tuple[int, int]]:
    """Windows ``(start, length)`` covering a signal of ``n`` samples.

    Every full window on the hop grid (:func:`genre_cli.segment.window_starts`); if the
    last of them ends before the signal does, one more full window ending at the last
    sample; a signal shorter than one window gives ``[(0, n)]`` (zero-padded when
    featurized); ``[]`` when ``n == 0``.
    """
    win = seg.win
    if n <= 0:
        return []
    if n < win:
        return [(0, n)]
    spans = window_starts(n, SegmentConfig(sr=seg.sr, seconds=seg.seconds, hop=seg.hop, frames=seg.frames, frame_hop=seg.frame_hop, policy="fixed", last="drop"))
    if spans[-1][0] + win < n:
        spans.append((n - win, win))
    return spans


# ----------------------------------------------------------------------------- decoding


def decode_blocks(path: str | Path, sr: int, *, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block to mono float32 at ``sr`` Hz.

    The concatenated blocks equal :func:`genre_cli.audio.load` of the whole file (same
    downmix, same soxr resampler in streaming mode).

    Raises
    ------
    AudioError
        Missing, empty, undecodable or non-finite audio; a format that needs ffmpeg when
        ffmpeg is not installed.
    """
    import soundfile as sf

    path = Path(path)
    check_file(path)
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:
        if path.suffix.lower() in FFMPEG_EXTENSIONS:
            yield from _ffmpeg_blocks(path, sr, block_seconds)
            return
        raise AudioError(f"{path}: not decodable audio ({open_reason(exc)})") from None
    with f:
        native = int(f.samplerate)
        block = max(1, int(block_seconds * native))

        def read() -> Iterator[np.ndarray]:
            got = 0
            while True:
                try:
                    data = f.read(block, dtype="float32", always_2d=True)
                except Exception as exc:
                    raise AudioError(f"{path}: decoding failed ({error_reason(exc)})") from None
                if not len(data):
                    if got:
                        check_complete(path, got, f.frames, native)
                    return
                got += len(data)
                yield downmix(data)

        yield from _resampled(path, read(), native, sr)


def _resampled(path: Path, blocks: Iterator[np.ndarray], native: int, sr: int) -> Iterator[np.ndarray]:
    import soxr

    stream = soxr.ResampleStream(native, sr, 1, dtype="float32", quality="HQ") if native != sr else None
    total = 0
    for y in blocks:
        if not np.all(np.isfinite(y)):
            raise AudioError(f"{path}: audio contains NaN or Inf samples")
        total += len(y)
        out = y if stream is None else stream.resample_chunk(y, last=False)
        if len(out):
            yield np.ascontiguousarray(out, dtype=np.float32)
    if total == 0:
        raise AudioError(f"{path}: no audio samples")
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield np.ascontiguousarray(tail, dtype=np.float32)


def ffmpeg_available() -> bool:
    """True when both ``ffmpeg`` and ``ffprobe`` are on the PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _ffmpeg_blocks(path: Path, sr: int, block_seconds: float) -> Iterator[np.ndarray]:
    """Stream m4a/aac/opus/wma through ffmpeg (native rate, mono f32le), resample with soxr."""
    if not ffmpeg_available():
        raise AudioError(f"{path}: {path.suffix} files need ffmpeg, which is not installed (e.g. apt-get install ffmpeg)")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    try:
        native = int(probe.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        msg = (probe.stderr.strip().splitlines() or ["no audio stream"])[-1]
        raise AudioError(f"{path}: not decodable audio ({msg[:200]})") from None
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1", "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    nbytes = 4 * max(1, int(block_seconds * native))

    def read() -> Iterator[np.ndarray]:
        while buf := proc.stdout.read(nbytes):
            yield np.frombuffer(buf[: len(buf) // 4 * 4], dtype="<f4").astype(np.float32)

    try:
        yield from _resampled(path, read(), native, sr)
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise AudioError(f"{path}: ffmpeg failed ({(err.splitlines() or ['exit ' + str(proc.returncode)])[-1][:200]})")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


class Windower:
    """Cut a stream of sample blocks into the windows of :func:`plan_windows`.

    Only the samples that a window still open (or the end-aligned last window) may need
    are kept, so memory is bounded by the block size plus one window.
    """

    def __init__(self, seg: SegmentConfig):
        self.win, self.hop = seg.win, seg.hop_samples
        self.seg = seg
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0  # sample index of buf[0]
        self.total = 0
        self.k = 0  # next grid window

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add samples; return the ``(start, window)`` pairs now complete."""
        self.buf = np.concatenate([self.buf, block]) if len(self.buf) else block
        self.total += len(block)
        out = []
        while self.k * self.hop + self.win <= self.total:
            s = self.k * self.hop - self.buf_start
            out.append((self.k * self.hop, self.buf[s : s + self.win].copy()))
            self.k += 1
        keep = min(self.k * self.hop, max(self.total - self.win, 0), self.total)
        if keep > self.buf_start:
            self.buf = self.buf[keep - self.buf_start :]
            self.buf_start = keep
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The windows left at the end of the stream (end-aligned or padded)."""
        out = []
        for start, n in plan_windows(self.total, self.seg)[self.k :]:
            w = np.zeros(self.win, dtype=np.float32)
            w[:n] = self.buf[start - self.buf_start : start - self.buf_start + n]
            out.append((start, w))
        return out


# ----------------------------------------------------------------------------- running


@dataclass
class _Context:
    seg: SegmentConfig
    fcfg: object
    names: list[str]
    block_seconds: float
    stop: threading.Event
    q: queue.Queue


@dataclass
class _State:
    path: Path
    probas: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    pending: int = 0  # chunks queued for inference
    done: bool = False
    duration: float = 0.0
    failure: str | None = None

    @property
    def ready(self) -> bool:
        return self.failure is not None or (self.done and self.pending == 0)


def _put(ctx: _Context, item) -> bool:
    while not ctx.stop.is_set():
        try:
            ctx.q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _work(idx: int, path: Path, ctx: _Context) -> None:
    """Decode and featurize one file, sending feature chunks then ``done`` (or ``fail``)."""
    from genre_cli.features import compute

    sent_end = False
    try:
        w = Windower(ctx.seg)
        chunk: list[tuple[int, np.ndarray]] = []

        def flush() -> bool:
            if not chunk:
                return True
            x = np.stack([c[1] for c in chunk])
            feats = compute(x, ctx.fcfg)
            item = ("chunk", idx, {k: feats[k] for k in ctx.names}, np.array([c[0] for c in chunk], dtype=np.int64))
            chunk.clear()
            return _put(ctx, item)

        for block in decode_blocks(path, ctx.seg.sr, block_seconds=ctx.block_seconds):
            if ctx.stop.is_set():
                return
            for item in w.push(block):
                chunk.append(item)
                if len(chunk) >= FEATURE_CHUNK and not flush():
                    return
        chunk.extend(w.finish())
        if not flush():
            return
        sent_end = True
        _put(ctx, ("done", idx, w.total / ctx.seg.sr))
    except AudioError as exc:
        sent_end = True
        _put(ctx, ("fail", idx, exc.message))
    except GenreError as exc:
        sent_end = True
        _put(ctx, ("fail", idx, f"{path}: {exc}"))
    except MemoryError:
        sent_end = True
        _put(ctx, ("fail", idx, f"{path}: out of memory"))
    except OSError as exc:
        sent_end = True
        _put(ctx, ("fail", idx, f"{path}: {exc.strerror or exc}"))
    except Exception as exc:  # never let one odd file stall the run
        sent_end = True
        _put(ctx, ("fail", idx, f"{path}: {type(exc).__name__}: {error_reason(exc)}"))
    finally:
        if not sent_end:
            _put(ctx, ("fail", idx, f"{path}: interrupted"))


def check_model(clf: Classifier) -> None:
    """Run one silent window through features and model; raise if the model is unusable.

    Raises
    ------
    InputError
        The model's feature/segment parameters or input shapes do not fit together.
    """
    from genre_cli.features import FeatureConfig, compute

    if getattr(clf, "_predict_checked", False):
        return
    try:
        seg = windows_for(clf)
        fcfg = FeatureConfig.from_params(clf.feature_config)
        feats = compute(np.zeros((1, seg.win), dtype=np.float32), fcfg)
        p = clf.predict_proba(feats)
    except GenreError as exc:
        raise InputError(f"{clf.path}: model is unusable for prediction: {exc.message}", hint=exc.hint) from None
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:  # parameters from a file that do not fit together
        raise InputError(f"{clf.path}: model is unusable for prediction: {type(exc).__name__}: {error_reason(exc)}") from exc
    if p.shape != (1, len(clf.labels)):
        raise InputError(f"{clf.path}: model returns shape {p.shape}, expected (1, {len(clf.labels)})")
    clf._predict_checked = True


def _share_cores(clf: Classifier, jobs: int) -> int:
    """Give CPU inference the cores the ``jobs`` decoding threads leave (at least one).

    torch's intra-op threads spin-wait at every layer; sharing cores with busy decoders
    made cnn6 inference ~3x slower per window (music-folder: 9.7 s wall with 2 threads,
    7.1 s with 1, 2 cores, --jobs 2). Returns the previous thread count to restore, or 0
    when nothing changed.
    """
    if clf.kind != "torch" or getattr(clf.device, "type", "cpu") != "cpu":
        return 0
    import torch

    want = max(1, available_cores() - jobs)
    prev = torch.get_num_threads()
    if want >= prev:
        return 0
    torch.set_num_threads(want)
    return prev


def run(
    model: str | Path | Classifier,
    inputs: Iterable[Path],
    *,
    jobs: int = 2,
    device: str = "auto",
    aggregate: str = "mean",
    timeline: bool = False,
    batch_size: int = BATCH_SIZE,
    block_seconds: float = BLOCK_SECONDS,
) -> Iterator[Prediction | Failure]:
    """Classify each input file; yield results in input order as soon as each is done.

    Parameters
    ----------
    model : path or Classifier
        Model artifact from ``genre train`` (loaded once), or an already loaded one.
    inputs : iterable of Path
        Consumed lazily (e.g. paths read from stdin as they arrive).
    jobs : int >= 1
        Decoding/featurizing worker threads.
    aggregate : {"mean", "vote"}
        Whole-file probabilities from the windows (as ``evaluate``'s track level).
    timeline : bool
        Keep per-window probabilities in :attr:`Prediction.windows`.
    batch_size : int
        Windows per forward pass (windows of several files share a batch).
    block_seconds : float
        Native-rate seconds decoded per block (memory vs. overhead).

    Raises
    ------
    GenreError
        Only for an unusable model or bad options; per-file problems are yielded as
        :class:`Failure`.
    """
    from genre_cli.features import FeatureConfig

    if aggregate not in ("mean", "vote"):
        raise UsageError(f"unknown aggregation {aggregate!r}; use mean or vote")
    if jobs < 1 or batch_size < 1 or block_seconds <= 0:
        raise UsageError("jobs and batch_size must be >= 1 and block_seconds > 0")
    # the model's description first (h5py only): decoding starts while torch and the weights load
    clf = model if isinstance(model, Classifier) else load_classifier(model, device=device, weights=False)
    seg = windows_for(clf)
    ctx = _Context(seg, FeatureConfig.from_params(clf.feature_config), sorted(set(clf.inputs.values())), block_seconds,
                   threading.Event(), queue.Queue(maxsize=4 * jobs))
    win_s = seg.win / seg.sr
    states: dict[int, _State] = {}
    batch: list[tuple[int, dict[str, np.ndarray], np.ndarray]] = []
    it = iter(inputs)
    exhausted = False
    submitted = emitted = 0
    max_open = 2 * jobs + 1
    ex = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="genre-predict")
    torch_threads = 0

    def fill() -> None:
        nonlocal exhausted, submitted
        while not exhausted and submitted - emitted < max_open:
            try:
                path = next(it)
            except StopIteration:
                exhausted = True
                return
            states[submitted] = _State(Path(path))
            ex.submit(_work, submitted, Path(path), ctx)
            submitted += 1

    def infer() -> None:
        if not batch:
            return
        feats = {k: np.concatenate([b[1][k] for b in batch]) for k in ctx.names}
        proba = clf.predict_proba(feats, batch_size=max(batch_size, 1))
        i = 0
        for idx, f, starts in batch:
            n = len(starts)
            st = states.get(idx)
            if st is not None:
                st.probas.append(proba[i : i + n])
                st.starts.append(starts)
                st.pending -= 1
            i += n
        batch.clear()

    def result(st: _State) -> Prediction | Failure:
        if st.failure is not None:
            return Failure(st.path, st.failure)
        p = np.concatenate(st.probas)
        starts = np.concatenate(st.starts)
        _, tp = aggregate_tracks(p, np.zeros(len(p), dtype=np.int64), method=aggregate)
        wins = [(s / seg.sr, min(s / seg.sr + win_s, st.duration), q) for s, q in zip(starts.tolist(), p)] if timeline else []
        return Prediction(st.path, st.duration, clf.labels, tp[0], len(p), wins)

    try:
        fill()
        if clf.model is None:
            clf = load_classifier(model, device=device)
        torch_threads = _share_cores(clf, jobs)
        check_model(clf)
        while emitted < submitted or not exhausted:
            head = states.get(emitted)
            if head is not None and head.ready:
                del states[emitted]
                emitted += 1
                fill()
                yield result(head)
                continue
            if head is not None and head.done and head.pending:
                infer()  # the next result only waits for inference
                continue
            try:
                msg = ctx.q.get_nowait() if batch else ctx.q.get()
            except queue.Empty:
                infer()  # nothing else to do right now: run what is batched
                continue
            kind, idx, payload = msg[0], msg[1], msg[2]
            st = states[idx]
            if kind == "chunk":
                batch.append((idx, payload, msg[3]))
                st.pending += 1
                if sum(len(b[2]) for b in batch) >= batch_size:
                    infer()
            elif kind == "done":
                st.done, st.duration = True, float(payload)
            else:
                st.failure = str(payload)
    finally:
        ctx.stop.set()
        while True:  # unblock workers waiting on a full queue
            try:
                ctx.q.get_nowait()
            except queue.Empty:
                break
        ex.shutdown(wait=True, cancel_futures=True)
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
