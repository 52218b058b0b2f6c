"""``segment`` stage: decode each track once and cut it into windows.

Audio is decoded (soundfile; ffmpeg fallback), downmixed to mono, resampled with soxr and
stored *once per track* (float32 by default, compressed, chunked) in the artifact; the segment table holds
``(track, start, length)`` so overlapping windows cost no extra storage and ``featurize``
never decodes again.

Layout of a segments artifact (stage ``segment``)::

    /audio                float32 (or float16/int16) [shape=(total_samples,)]  all decoded tracks,
                          concatenated; each track starts on a chunk boundary (chunks of
                          AUDIO_CHUNK samples; Blosc LZ4 + bit-shuffle unless --no-compress:
                          reading it needs the filter, ``import hdf5plugin`` registers it);
                          sample = value * audio_scale (1/32767 for int16, 2**-14 for
                          float16, 1 for float32)
    /tracks/<column>      track_id, path, label, group, split, fold, offset, n_samples
    /segments/<column>    track (row in /tracks), start (sample in track), length (samples <= win),
                          and the track's track_id, label, group, split, fold (splits stay by track)
    /skipped/<column>     track_id, path, reason (unreadable, empty, NaN/Inf, shorter than a window;
                          tracks the index already marked unusable, with its reason)
    attrs: labels (JSON), sr, win (window length in samples), audio_scale

Memory: decoding runs in ``jobs`` threads through a bounded ordered map, so at most
``2 * jobs`` decoded tracks (storage dtype, plus one float32 track per thread) are in memory.
All-silent audio is valid audio and is kept.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError, AudioError, UsageError
from genre_cli.fetch import load_index
from genre_cli.parallel import ordered_map
from genre_cli.stage import StageResult, execute
from genre_cli.ui import progress

AUDIO_SCALE = 1.0 / 32767.0  #: int16 storage: stored value x AUDIO_SCALE = sample
#: float16 storage holds sample x 2**14: samples down to 3.7e-9 (-169 dBFS) stay normal
#: float16 numbers (unscaled, the 9 % of decoded drum samples below 6.1e-5 were subnormal,
#: losing precision, and numpy converts subnormals ~4x slower); |sample| < 3.998 fits.
F16_SCALE = 2.0**14
_PEAK_LIMIT = {"int16": 1.0, "float16": 65504.0 / F16_SCALE, "float32": None}
_STORED_SCALE = {"int16": AUDIO_SCALE, "float16": 1.0 / F16_SCALE, "float32": 1.0}
AUDIO_DTYPES = ("int16", "float16", "float32")
POLICIES = ("fixed", "random", "first")


@dataclass(frozen=True)
class SegmentConfig:
    """How tracks are cut into windows.

    Attributes
    ----------
    sr : int > 0
        Sample rate (Hz) audio is resampled to.
    seconds : float > 0
        Window length in seconds (ignored when ``frames`` is set).
    hop : float > 0 or None
        Hop between window starts in seconds; ``None`` = ``seconds`` (no overlap).
    frames, frame_hop : int
        Window length given in STFT frames instead (Yang & Zhang 2019: 128 frames at hop 512):
        ``(frames - 1) * frame_hop`` samples, which a centred STFT with that hop turns into
        exactly ``frames`` frames.
    policy : {"fixed", "random", "first"}
        ``fixed``: every window at the hop; ``random``: ``count`` non-overlapping windows per
        track at random, seeded positions (F. Zhang 2022: 5 x 3 s); ``first``: the first ``count``
        fixed windows (Schrader et al. 2021: 10 x 5 s).
    count : int
        Windows per track for ``random`` / ``first``.
    last : {"drop", "pad"}
        A last partial window (or a track shorter than one window) is dropped, or kept and
        zero-padded to full length.
    seed : int
        Seed of the random policy (per track: hashed with the track id).
    """

    sr: int = 22050
    seconds: float = 3.0
    hop: float | None = None
    frames: int = 0
    frame_hop: int = 512
    policy: str = "fixed"
    count: int = 0
    last: str = "drop"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sr <= 0:
            raise UsageError(f"--sr must be > 0, got {self.sr}")
        if self.frames < 0 or (self.frames == 0 and self.seconds <= 0):
            raise UsageError("window length must be > 0 (--seconds or --frames)")
        if self.hop is not None and self.hop <= 0:
            raise UsageError(f"--hop must be > 0, got {self.hop}")
        if self.policy not in POLICIES:
            raise UsageError(f"unknown window policy {self.policy!r}; valid: {', '.join(POLICIES)}")
        if self.policy in ("random", "first") and self.count <= 0:
            raise UsageError(f"the {self.policy} policy needs a window count > 0")
        if self.last not in ("drop", "pad"):
            raise UsageError(f"--last must be drop or pad, got {self.last!r}")

    @property
    def win(self) -> int:
        """Window length in samples."""
        if self.frames:
            return (self.frames - 1) * self.frame_hop
        return int(round(self.seconds * self.sr))

    @property
    def hop_samples(self) -> int:
        if self.hop is None:
            return self.win
        return max(1, int(round(self.hop * self.sr)))

    def to_params(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_params(cls, d: dict[str, Any]) -> "SegmentConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def slug(self) -> str:
        length = f"{self.frames}fr" if self.frames else f"{self.seconds:g}s"
        hop = "" if self.hop is None else f"-hop{self.hop:g}s"
        pol = "" if self.policy == "fixed" else f"-{self.policy}{self.count}"
        return f"seg-{length}{hop}{pol}-{self.sr // 1000}k"


def window_starts(n: int, cfg: SegmentConfig, *, track_id: str = "") -> list[tuple[int, int]]:
    """Windows ``(start, length)`` for a track of ``n`` samples under ``cfg``.

    ``length`` < ``cfg.win`` only for a padded last window. Returns ``[]`` when nothing fits.
    """
    win, hop = cfg.win, cfg.hop_samples
    if cfg.policy == "random":
        k = cfg.count
        free = n - k * win
        if free < 0:
            k = n // win  # as many as fit
            free = n - k * win
            if k == 0:
                return [(0, n)] if cfg.last == "pad" and n > 0 else []
        rng = np.random.default_rng([cfg.seed, zlib.crc32(track_id.encode())])
        offsets = np.sort(rng.integers(0, free + 1, size=k))
        return [(int(o) + i * win, win) for i, o in enumerate(offsets)]
    starts = list(range(0, max(n - win, -1) + 1, hop)) if n >= win else []
    out = [(s, win) for s in starts]
    if cfg.last == "pad":
        nxt = starts[-1] + hop if starts else 0
        if nxt < n and (not starts or starts[-1] + win < n):
            out.append((nxt, n - nxt))
    if cfg.policy == "first":
        out = out[: cfg.count]
    return out


def run(
    index_path: str | Path,
    *,
    config: SegmentConfig | None = None,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    jobs: int = 2,
    compress: bool = True,
    audio_dtype: str = "float32",
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Decode the ok tracks of an index and write the segments artifact.

    Parameters
    ----------
    index_path : str or Path
        Index artifact from ``genre fetch``.
    config : SegmentConfig or None
        Window policy and sample rate (default :class:`SegmentConfig`).
    jobs : int >= 1
        Decoding threads (libsndfile and soxr release the GIL). At most ``2 * jobs``
        decoded tracks are held in memory at once.
    compress : bool
        Store the audio with HDF5's Blosc filter (LZ4, bit-shuffle; from ``hdf5plugin``):
        13-21 % smaller than raw on the groove-styles drums at 300-800 MB/s, where
        shuffle + deflate-1 saved 16 % at ~40 MB/s and took half of segment's time.
        Either way it is stored in chunks of :data:`AUDIO_CHUNK` samples.
    audio_dtype : {"float16", "int16", "float32"}
        Storage of the decoded audio. ``float32`` (default) keeps the decoded values
        exactly, so features equal those computed from the decoder's output (3.4 bytes per
        sample with compression). ``float16`` (samples x 2**14, 11 significant bits down to
        -169 dBFS; about half the disk) and ``int16`` (exact to 1/32767; a track whose decoded
        peak exceeds 1.0 is scaled down to 1.0) are lossy: their rounding noise, ~66 dB below
        the signal for float16, masks spectral bins far below a frame's peak, which moves
        fixed-reference dB values and statistics of near-empty bands (measured with
        ``bench/featurize.py --limit 18 --sample-every 5 --audio-dtype float16``: mel p99.9
        difference 0.56 dB, spectral contrast std up to 29 % of its range).

    Returns
    -------
    StageResult
        ``summary``: ``n_tracks``, ``n_segments``, ``n_skipped``, ``skipped`` (first reasons),
        ``audio_hours``.
    """
    cfg = config or SegmentConfig()
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if audio_dtype not in AUDIO_DTYPES:
        raise UsageError(f"unknown audio dtype {audio_dtype!r}; valid: {', '.join(AUDIO_DTYPES)}")
    index = load_index(index_path)
    params = {**cfg.to_params(), "compress": bool(compress), "audio_dtype": audio_dtype}
    upstream = {"index": (index.meta.fingerprint, index.path)}

    def build(f) -> dict[str, Any]:
        return _build(f, index, cfg, jobs=jobs, compress=compress, dtype=np.dtype(audio_dtype), show_progress=show_progress)

    return execute(
        stage="segment", params=params, upstream=upstream, build=build, out=out, workdir=workdir,
        dataset=index.dataset, slug=cfg.slug(), force=force, dry_run=dry_run,
        attrs={"labels": index.labels, "sr": cfg.sr, "win": cfg.win, "audio_scale": _STORED_SCALE[audio_dtype]},
    )


#: Samples per HDF5 chunk of ``/audio``; every track starts on a chunk boundary.
AUDIO_CHUNK = 1 << 16
_TRACK_COLS = ("track_id", "path", "label", "group", "split", "fold")


def _encode(y: np.ndarray, dtype: np.dtype = np.dtype(np.int16)) -> np.ndarray:
    """``y`` as stored values of ``dtype`` (sample / the dtype's audio_scale; int16 rounded),
    zero-padded to a whole number of :data:`AUDIO_CHUNK` chunks. Modifies ``y`` in place."""
    n_chunks = -(-len(y) // AUDIO_CHUNK)
    pcm = np.empty(n_chunks * AUDIO_CHUNK, dtype=dtype)
    pcm[len(y):] = 0
    scale = np.float32(1.0 / _STORED_SCALE[dtype.name])  # 32767, 2**14 or 1
    if scale != 1:
        y *= scale
    if dtype == np.int16:
        np.clip(y, -32767.0, 32767.0, out=y)
        np.rint(y, out=pcm[: len(y)], casting="unsafe")
    else:
        pcm[: len(y)] = y
    return pcm


def audio_filter(compress: bool) -> dict[str, Any]:
    """``create_dataset`` keywords of the stored audio: Blosc LZ4 + bit-shuffle, or raw."""
    if not compress:
        return {}
    import hdf5plugin

    return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE))


def register_filters() -> None:
    """Make HDF5's Blosc filter available to this process (reading compressed /audio)."""
    import hdf5plugin  # noqa: F401  (registers the filters on import)


def _build(f, index, cfg: SegmentConfig, *, jobs: int, compress: bool, dtype: np.dtype, show_progress: bool) -> dict[str, Any]:
    t = index.tracks
    rows = np.flatnonzero(t["status"] == "ok")
    audio = f.create_dataset("audio", shape=(0,), maxshape=(None,), dtype=dtype, chunks=(AUDIO_CHUNK,), **audio_filter(compress))
    kept: dict[str, list] = {k: [] for k in (*_TRACK_COLS, "offset", "n_samples")}
    seg: dict[str, list] = {"track": [], "start": [], "length": []}
    skipped: dict[str, list] = {"track_id": [], "path": [], "reason": []}
    for i in np.flatnonzero(t["status"] != "ok"):
        skipped["track_id"].append(t["track_id"][i])
        skipped["path"].append(t["path"][i])
        skipped["reason"].append(f"{t['status'][i]}: {t['reason'][i]}" if t["reason"][i] else t["status"][i])

    def decode(i: int):
        """(row, n_samples, windows, stored samples, reason): runs in a worker thread."""
        path = index.root / t["path"][i]
        try:
            y, _ = _load_audio(path, cfg.sr, peak_limit=_PEAK_LIMIT[dtype.name])
        except AudioError as exc:
            return i, 0, [], None, str(exc)
        windows = window_starts(len(y), cfg, track_id=t["track_id"][i])
        if not windows:
            return i, len(y), [], None, f"{path}: shorter than one window ({len(y) / cfg.sr:.2f} s < {cfg.win / cfg.sr:.2f} s)"
        return i, len(y), windows, _encode(y, dtype), ""

    offset = 0  # in samples, always a multiple of AUDIO_CHUNK
    with progress(len(rows), "segment", enabled=show_progress, unit="tracks") as advance:
        for i, n, windows, pcm, reason in ordered_map(decode, rows, jobs=jobs):
            advance(1)
            if not windows:
                skipped["track_id"].append(t["track_id"][i])
                skipped["path"].append(t["path"][i])
                skipped["reason"].append(reason)
                continue
            audio.resize((offset + len(pcm),))
            audio[offset:] = pcm  # whole chunks: HDF5 filters each and writes it once
            row = len(kept["track_id"])
            for k in _TRACK_COLS:
                kept[k].append(t[k][i])
            kept["offset"].append(offset)
            kept["n_samples"].append(n)
            for s, length in windows:
                seg["track"].append(row)
                seg["start"].append(s)
                seg["length"].append(length)
            offset += len(pcm)
    typed = {
        **{k: np.asarray(kept[k], dtype=object) for k in ("track_id", "path", "group", "split")},
        **{k: np.asarray(kept[k], dtype=np.int64) for k in ("label", "fold", "offset", "n_samples")},
    }
    artifacts.write_table(f, "tracks", {k: typed[k] for k in (*_TRACK_COLS, "offset", "n_samples")})
    tr = np.asarray(seg["track"], dtype=np.int64)
    seg_table = {k: np.asarray(v, dtype=np.int64) for k, v in seg.items()}
    seg_table.update({k: typed[k][tr] for k in ("track_id", "label", "group", "split", "fold")})
    artifacts.write_table(f, "segments", seg_table)
    artifacts.write_table(f, "skipped", {k: np.asarray(v, dtype=object) for k, v in skipped.items()})
    n_audio = int(typed["n_samples"].sum())
    return {
        "n_tracks": len(kept["track_id"]),
        "n_segments": len(tr),
        "n_skipped": len(skipped["track_id"]),
        "skipped": [f"{p}: {r}" for p, r in zip(skipped["path"], skipped["reason"])],
        "audio_hours": n_audio / cfg.sr / 3600.0,
    }


def _load_audio(path: Path, sr: int, *, peak_limit: float | None = 1.0) -> tuple[np.ndarray, int]:
    from genre_cli.audio import load

    y, sr = load(path, sr=sr)
    peak = float(np.max(np.abs(y))) if len(y) and peak_limit is not None else 0.0
    if peak_limit is not None and peak > peak_limit:  # decoders and resamplers may overshoot; keep the shape, avoid clipping
        y = y * np.float32(peak_limit / peak)
    return y, sr


@dataclass
class Segments:
    """A segments artifact opened for reading (keeps the file open; use as a context manager)."""

    path: Path
    meta: artifacts.ArtifactMeta
    labels: list[str]
    sr: int
    win: int
    tracks: dict[str, np.ndarray]
    segments: dict[str, np.ndarray]
    skipped: dict[str, np.ndarray]
    dataset: str
    config: SegmentConfig
    audio_scale: float = AUDIO_SCALE  #: stored value x audio_scale = sample in [-1, 1]


def load_segments(path: str | Path) -> Segments:
    """Read the tables of a segments artifact (not the audio)."""
    register_filters()  # so that callers can read the compressed /audio
    with artifacts.open_artifact(path, "segment") as (f, meta):
        audio = artifacts.require_dataset(f, "audio", ndim=1, kind="if")
        try:
            config = SegmentConfig.from_params(meta.params)
        except UsageError as exc:
            raise ArtifactError(f"{path}: invalid segment parameters ({exc.message})") from None
        segs = Segments(
            path=Path(path), meta=meta, labels=artifacts.get_json_attr(f, "labels", []),
            sr=int(f.attrs["sr"]), win=int(f.attrs["win"]),
            tracks=artifacts.read_table(f, "tracks", path=path), segments=artifacts.read_table(f, "segments", path=path),
            skipped=artifacts.read_table(f, "skipped", path=path), dataset=str(f.attrs.get("dataset", "dataset")),
            config=config, audio_scale=float(f.attrs.get("audio_scale", AUDIO_SCALE)),
        )
        _check_tables(segs, len(audio))
        return segs


def _check_tables(segs: Segments, n_audio: int) -> None:
    """Raise :class:`ArtifactError` unless every segment lies inside its track and every
    track inside ``/audio`` (a file from elsewhere may point anywhere)."""
    where = segs.path
    if segs.sr <= 0 or segs.win <= 0:
        raise ArtifactError(f"{where}: sr and win must be > 0, got sr={segs.sr}, win={segs.win}")
    if not isinstance(segs.labels, list):
        raise ArtifactError(f"{where}: attribute 'labels' must be a JSON list")
    t, s = segs.tracks, segs.segments
    for table, cols in (("tracks", ("offset", "n_samples", "label")), ("segments", ("track", "start", "length"))):
        for col in cols:
            x = (t if table == "tracks" else s).get(col)
            if x is None or x.dtype.kind not in "iu":
                raise ArtifactError(f"{where}: table {table!r} needs an integer column {col!r}")
    off, n = t["offset"].astype(np.int64), t["n_samples"].astype(np.int64)
    if len(off) and (off.min() < 0 or n.min() < 0 or (off + n).max() > n_audio):
        raise ArtifactError(f"{where}: a track lies outside /audio ({n_audio} samples)")
    tr, st, ln = (s[k].astype(np.int64) for k in ("track", "start", "length"))
    if len(tr) and (tr.min() < 0 or tr.max() >= len(off)):
        raise ArtifactError(f"{where}: a segment refers to track {int(tr.max() if tr.max() >= len(off) else tr.min())}; there are {len(off)} tracks")
    if len(tr) and (st.min() < 0 or ln.min() <= 0 or ln.max() > segs.win or (st + ln > n[tr]).any()):
        raise ArtifactError(f"{where}: a segment lies outside its track (or is longer than win={segs.win})")
    lab = t["label"]
    if len(lab) and (lab.min() < -1 or lab.max() >= len(segs.labels)):
        raise ArtifactError(f"{where}: track labels must index the {len(segs.labels)} labels, found {int(lab.max() if lab.max() >= len(segs.labels) else lab.min())}")


def read_windows(audio_ds, segs: Segments, rows: np.ndarray) -> np.ndarray:
    """Float32 windows [shape=(len(rows), win)] for segment ``rows`` (zero-padded where short).

    Reads one contiguous block covering the batch when the windows are dense in it (the
    usual case: consecutive windows of consecutive tracks), else one read per window, so a
    sparse batch (``--first 1`` of long tracks) never reads the audio in between.
    """
    register_filters()
    out = np.zeros((len(rows), segs.win), dtype=np.float32)
    if len(rows) == 0:
        return out
    tr = segs.segments["track"][rows]
    starts = segs.tracks["offset"][tr] + segs.segments["start"][rows]
    lengths = segs.segments["length"][rows]
    lo, hi = int(starts.min()), int((starts + lengths).max())
    if hi - lo <= 2 * int(lengths.sum()):
        block = audio_ds[lo:hi]  # one contiguous read covering the batch
        for j, (s, n) in enumerate(zip(starts, lengths)):
            out[j, :n] = block[s - lo : s - lo + n]
    else:
        for j, (s, n) in enumerate(zip(starts, lengths)):
            out[j, :n] = audio_ds[int(s) : int(s + n)]
    if segs.audio_scale != 1.0:
        out *= segs.audio_scale
    return out
