"""``predict``: classify audio files with a model artifact; streams one result per file.

The model file holds everything needed (window length and hop, sample rate, feature
parameters, normalisation statistics, weights), so nothing else is read.

Pipeline
--------
* **Streaming decode.** Each file is decoded block by block by :func:`genre_cli.audio.stream`
  (the decoder ``segment`` uses: soundfile, ffmpeg for m4a/aac/opus/wma when installed),
  downmixed to mono and resampled with soxr's streaming resampler, whose output is identical
  to resampling the whole file at once. A one-hour recording never sits in memory: only one
  block and the samples of the windows still open are kept.
* **Windows.** The model's window length and hop, over the whole file: every full window
  at the hop, plus, when the hop grid leaves a tail uncovered, one full window aligned
  to the end of the file (so no window is mostly zero padding). A file shorter than one
  window gives one zero-padded window. See :func:`genre_cli.windows.plan_windows`.
* **Workers.** Decoding and featurizing run in ``jobs`` worker threads (numpy, soxr,
  libsndfile and the FFT release the GIL); feature chunks go through a bounded queue.
* **Batched inference.** The caller's thread loads the model once and runs it on batches
  that mix windows of several files.
* **Aggregation.** Whole-file probabilities come from all windows with
  :func:`genre_cli.inference.aggregate_tracks`, the function ``evaluate`` uses for
  track-level scores (``mean`` of window probabilities by default, or ``vote``).

Results are yielded in input order, each as soon as it and all files before it are done. The
inputs are read by a feeder thread (at most ``2 * jobs + 1`` paths ahead of the results), so a
result comes out while the next path from a slow pipe has not arrived yet.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre_cli import audio
from genre_cli.audio import BLOCK_SECONDS, error_reason, is_audio_path
from genre_cli.errors import AudioError, GenreError, InputError, UsageError
from genre_cli.inference import Classifier, aggregate_tracks, check_device, load_classifier
from genre_cli.parallel import available_cores
from genre_cli.testhooks import pause_point
from genre_cli.walk import walk_files
from genre_cli.windows import SegmentConfig, Windower

#: Windows featurized together (one :func:`genre_cli.features.compute` call).
FEATURE_CHUNK = 32
#: Windows per forward pass (may mix files).
BATCH_SIZE = 128


@dataclass
class Prediction:
    """Whole-file result.

    Attributes
    ----------
    proba : np.ndarray [shape=(n_classes,)]
        Aggregated probabilities (``vote``: fraction of windows, ties broken by mean).
        For a tagger (``output == "sigmoid"``): the mean tag likelihoods, each in [0, 1],
        independent (they do not sum to 1).
    windows : list of (start_s, end_s, proba)
        Per-window probabilities (only when asked for a timeline).
    duration : float
        Seconds decoded and analysed (with ``max_seconds``: at most that).
    truncated : bool
        The file is longer than ``max_seconds``; only its beginning was analysed.
    output : {"softmax", "sigmoid"}
        The model's output kind (:attr:`genre_cli.inference.Classifier.output`).
    """

    path: Path
    duration: float
    labels: list[str]
    proba: np.ndarray
    n_windows: int = 0
    windows: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    truncated: bool = False
    output: str = "softmax"

    @property
    def words(self) -> tuple[str, str]:
        """What a label and its score are called in the output: ``("genre", "probability")``,
        or ``("tag", "likelihood")`` for a tagger's independent likelihoods."""
        return ("tag", "likelihood") if self.output == "sigmoid" else ("genre", "probability")

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
    """Counts from walking the inputs (files that are not audio are ignored, not errors).

    Attributes
    ----------
    ignored : int
        Files in folders that are not audio (by extension).
    hidden : int
        Hidden files and folders in folders (name starting with ``.``, e.g. macOS ``._x.wav``),
        skipped unread, a folder counted once.
    """

    ignored: int = 0
    hidden: int = 0


def top_k(proba: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """``[(label, probability), ...]`` of the ``k`` largest entries of ``proba``."""
    order = np.argsort(-proba, kind="stable")[:k]
    return [(labels[i], float(proba[i])) for i in order]


_ranked = top_k  # for functions whose ``top_k`` parameter hides it


def record(res: Prediction, *, top_k: int = 1, timeline: bool = False, path: str | None = None) -> dict:
    """The JSON record of one classified file: a line of ``genre predict --format jsonl``,
    and the body of ``genre serve``'s answer (which adds a few keys of its own).

    Parameters
    ----------
    res : Prediction
    top_k : int >= 1
        Labels listed in ``top`` (and in each window's ``top``).
    timeline : bool
        Add ``windows``: one entry per window of the model's length and hop.
    path : str or None
        What to write as ``path`` (default ``str(res.path)``; serve gives the client's
        file name, never the server's temporary path).

    Returns
    -------
    dict
        ``{"path", "genre", "probability", "duration" (s, decoded), "n_windows",
        "top": [{"genre", "probability"}, ...] (best first), "probabilities": {label: p}}``
        plus, with ``timeline``, ``"windows": [{"start", "end" (s), "genre", "probability",
        "top": [...]}, ...]``. Probabilities are rounded to 6 decimals, times to 3.
        A tagger's record (``res.output == "sigmoid"``) has the same keys -- its labels are
        tags and its values independent likelihoods that need not sum to 1 -- and adds
        ``"output": "sigmoid"`` after ``probabilities`` to say so (one schema for every model,
        so scripts and ``genre serve``'s page read both).
    """
    top = res.top(top_k)
    rec = {
        "path": str(res.path) if path is None else path,
        "genre": top[0][0],
        "probability": round(top[0][1], 6),
        "duration": round(res.duration, 3),
        "n_windows": res.n_windows,
        "top": [{"genre": g, "probability": round(p, 6)} for g, p in top],
        "probabilities": {g: round(float(p), 6) for g, p in zip(res.labels, res.proba)},
    }
    if res.output == "sigmoid":  # a tagger: independent likelihoods in [0, 1], not a distribution
        rec["output"] = "sigmoid"
    if timeline:
        rec["windows"] = []
        for s, e, p in res.windows:
            wt = _ranked(p, res.labels, top_k)
            rec["windows"].append(
                {
                    "start": round(s, 3),
                    "end": round(e, 3),
                    "genre": wt[0][0],
                    "probability": round(wt[0][1], 6),
                    "top": [{"genre": g, "probability": round(q, 6)} for g, q in wt],
                }
            )
    return rec


def iter_inputs(paths: Iterable[str], stats: WalkStats) -> Iterator[Path]:
    """Expand files and folders lazily (folders recursive, audio by extension).

    Explicit files are always tried, whatever their extension or name (a failure names the
    reason); blank and whitespace-only lines are skipped. Folders are walked as ``genre fetch
    folder`` walks them (:func:`genre_cli.walk.walk_files`: sorted, hidden entries skipped,
    symlinked folders followed once); their non-audio files are counted in ``stats.ignored``,
    their hidden files and folders in ``stats.hidden``.
    """

    def hidden(_path: Path) -> None:
        stats.hidden += 1

    for raw in paths:
        raw = raw.rstrip("\r\n")
        if not raw.strip():
            continue
        p = Path(raw)
        try:
            is_dir = p.is_dir()
        except OSError:  # e.g. a name too long (ENAMETOOLONG): tried as a file, which reports the reason
            is_dir = False
        if is_dir:
            for fp in walk_files(p, on_hidden=hidden):
                if is_audio_path(fp):
                    yield fp
                else:
                    stats.ignored += 1
        else:
            yield p


def windows_for(clf: Classifier) -> SegmentConfig:
    """The model's window length, hop and sample rate (fixed grid over the whole file)."""
    return SegmentConfig.from_params(clf.segment_config).grid()


# ----------------------------------------------------------------------------- running


@dataclass
class _Context:
    seg: SegmentConfig
    fcfg: object
    names: list[str]
    block_seconds: float
    stop: threading.Event
    q: queue.Queue
    max_samples: int | None = None


@dataclass
class _State:
    path: Path
    probas: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    pending: int = 0  # chunks queued for inference
    done: bool = False
    duration: float = 0.0
    truncated: bool = False
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

        limit, truncated = ctx.max_samples, False
        blocks = audio.stream(path, ctx.seg.sr, block_seconds=ctx.block_seconds)
        try:
            for block in blocks:
                if ctx.stop.is_set():
                    return
                if limit is not None and w.total + len(block) > limit:
                    block, truncated = block[: limit - w.total], True
                for item in w.push(block):
                    chunk.append(item)
                    if len(chunk) >= FEATURE_CHUNK and not flush():
                        return
                if truncated:
                    break  # the rest is never decoded
        finally:
            blocks.close()
        chunk.extend(w.finish())
        if not flush():
            return
        sent_end = True
        _put(ctx, ("done", idx, (w.total / ctx.seg.sr, truncated)))
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


def _feed(it: Iterator, slots: threading.Semaphore, ex: ThreadPoolExecutor, ctx: _Context) -> None:
    """Feeder thread: once a slot is free, read the next input, announce it to the caller's thread
    as ``("input", idx, path)`` and start decoding it (its worker's messages follow the
    announcement in ``ctx.q``); at the end send ``("inputs-done", ...)``, or ``("inputs-failed",
    None, exc)`` when reading the inputs raised."""
    idx = 0
    try:
        while True:
            while not slots.acquire(timeout=0.2):
                if ctx.stop.is_set():
                    return
            if ctx.stop.is_set():
                return
            try:
                path = Path(next(it))
            except StopIteration:
                _put(ctx, ("inputs-done", None, None))
                return
            if not _put(ctx, ("input", idx, path)):
                return
            ex.submit(_work, idx, path, ctx)
            idx += 1
    except BaseException as exc:  # e.g. undecodable bytes on stdin: the caller's thread raises it
        if not ctx.stop.is_set():
            _put(ctx, ("inputs-failed", None, exc))


def check_aggregate(clf: Classifier, aggregate: str, *, name: str | Path | None = None) -> None:
    """Refuse an aggregation that means nothing for this model.

    ``vote`` counts which label wins each window: it needs a classifier (one label per window,
    ``clf.output == "softmax"``). A tagger's windows have many tags each (independent
    likelihoods), so its whole-file scores are the ``mean`` likelihoods.

    Parameters
    ----------
    clf : Classifier
        The model (its description is enough).
    aggregate : {"mean", "vote"}
    name : str, path or None
        What to call the model in the message (default: its path).

    Raises
    ------
    UsageError
        ``vote`` with a tagger.
    """
    if aggregate == "vote" and clf.output == "sigmoid":
        raise UsageError(
            f"aggregation 'vote' needs a classifier (one label per window); {name or clf.path} is a tagger "
            f"({len(clf.labels)} independent tag likelihoods per window): use 'mean' (each tag's mean likelihood over the windows), "
            "the only aggregation for a tagger"
        )


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
    max_seconds: float | None = None,
) -> Iterator[Prediction | Failure]:
    """Classify each input file; yield results in input order as soon as each is done.

    Parameters
    ----------
    model : str, path or Classifier
        Model artifact from ``genre train`` or a built-in model's name (loaded once,
        :func:`~genre_cli.inference.load_classifier`), or an already loaded one.
    inputs : iterable of Path
        Consumed lazily by a feeder thread, at most ``2 * jobs + 1`` ahead of the results
        yielded (e.g. paths read from stdin as they arrive: a result is yielded while the
        next path has not come). An exception it raises is raised here.
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
    max_seconds : float > 0 or None
        Analyse at most the first ``max_seconds`` of each file (the rest is not decoded;
        :attr:`Prediction.truncated` says it happened). ``None``: whole files.

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
    if max_seconds is not None and not max_seconds > 0:
        raise UsageError(f"max_seconds must be > 0, got {max_seconds!r}")
    check_device(device)
    # the model's description first (h5py only): decoding starts while torch and the weights load
    clf = model if isinstance(model, Classifier) else load_classifier(model, device=device, weights=False)
    check_aggregate(clf, aggregate, name=clf.path if isinstance(model, Classifier) else model)
    seg = windows_for(clf)
    ctx = _Context(
        seg,
        FeatureConfig.from_params(clf.feature_config),
        sorted(set(clf.inputs.values())),
        block_seconds,
        threading.Event(),
        queue.Queue(maxsize=4 * jobs),
        None if max_seconds is None else max(1, int(round(max_seconds * seg.sr))),
    )
    win_s = seg.win / seg.sr
    states: dict[int, _State] = {}
    batch: list[tuple[int, dict[str, np.ndarray], np.ndarray]] = []
    exhausted = False
    submitted = emitted = 0
    ex = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="genre-predict")
    torch_threads = 0
    # The inputs are read by a feeder thread (a path from stdin may take minutes to come): the
    # loop below goes on classifying and yielding meanwhile, and decoding starts while the
    # weights load. It reads at most 2 * jobs + 1 paths ahead of the results yielded (slots).
    slots = threading.Semaphore(2 * jobs + 1)
    threading.Thread(target=_feed, args=(iter(inputs), slots, ex, ctx), name="genre-predict-inputs", daemon=True).start()

    def infer() -> None:
        if not batch:
            return
        feats = {k: np.concatenate([b[1][k] for b in batch]) for k in ctx.names}
        proba = clf.predict_proba(feats, batch_size=max(batch_size, 1))
        i = 0
        for idx, _feats, starts in batch:
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
        return Prediction(st.path, st.duration, clf.labels, tp[0], len(p), wins, st.truncated, clf.output)

    try:
        if clf.model is None:
            clf = load_classifier(model, device=device)
        torch_threads = _share_cores(clf, jobs)
        check_model(clf)
        while emitted < submitted or not exhausted:
            head = states.get(emitted)
            if head is not None and head.ready:
                del states[emitted]
                emitted += 1
                slots.release()
                yield result(head)
                pause_point("predict:file")  # test-only (genre_cli.testhooks); inert unless GENRE_TEST_PAUSE_AT is set
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
            if kind == "input":  # announced by the feeder before its worker starts
                states[idx] = _State(payload)
                submitted += 1
                continue
            if kind == "inputs-done":
                exhausted = True
                continue
            if kind == "inputs-failed":
                raise payload
            st = states[idx]
            if kind == "chunk":
                batch.append((idx, payload, msg[3]))
                st.pending += 1
                if sum(len(b[2]) for b in batch) >= batch_size:
                    infer()
            elif kind == "done":
                st.done, st.duration, st.truncated = True, float(payload[0]), bool(payload[1])
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
