"""``segment`` stage: decode each track once and cut it into windows.

Audio is decoded (soundfile; ffmpeg fallback), downmixed to mono, resampled with soxr and
stored *once per track* (int16, compressed, chunked) in the artifact; the segment table holds
``(track, start, length)`` so overlapping windows cost no extra storage and ``featurize``
never decodes again.

Layout of a segments artifact (stage ``segment``)::

    /audio                int16 [shape=(total_samples,)]  all decoded tracks, concatenated
    /tracks/<column>      track_id, path, label, group, split, fold, offset, n_samples
    /segments/<column>    track (row in /tracks), start (sample in track), length (samples <= win)
    /skipped/<column>     track_id, path, reason
    attrs: labels (JSON), sr, win (window length in samples), audio_scale
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.errors import AudioError, UsageError
from genre_cli.fetch import load_index
from genre_cli.parallel import ordered_map
from genre_cli.stage import StageResult, execute
from genre_cli.ui import progress

AUDIO_SCALE = 1.0 / 32767.0
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
        Window length given in STFT frames instead (seed 004: 128 frames at hop 512):
        ``(frames - 1) * frame_hop`` samples, which a centred STFT with that hop turns into
        exactly ``frames`` frames.
    policy : {"fixed", "random", "first"}
        ``fixed``: every window at the hop; ``random``: ``count`` non-overlapping windows per
        track at random, seeded positions (seed 001: 5 x 3 s); ``first``: the first ``count``
        fixed windows (seed 002: 10 x 5 s).
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
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Decode the ok tracks of an index and write the segments artifact.

    Returns
    -------
    StageResult
        ``summary``: ``n_tracks``, ``n_segments``, ``n_skipped``, ``skipped`` (first reasons),
        ``audio_hours``.
    """
    cfg = config or SegmentConfig()
    index = load_index(index_path)
    params = cfg.to_params()
    upstream = {"index": (index.meta.fingerprint, index.path)}

    def build(f) -> dict[str, Any]:
        return _build(f, index, cfg, jobs=jobs, show_progress=show_progress)

    return execute(
        stage="segment", params=params, upstream=upstream, build=build, out=out, workdir=workdir,
        dataset=index.dataset, slug=cfg.slug(), force=force, dry_run=dry_run,
        attrs={"labels": index.labels, "sr": cfg.sr, "win": cfg.win, "audio_scale": AUDIO_SCALE},
    )


def _build(f, index, cfg: SegmentConfig, *, jobs: int, show_progress: bool) -> dict[str, Any]:
    t = index.tracks
    rows = np.flatnonzero(t["status"] == "ok")
    audio = f.create_dataset("audio", shape=(0,), maxshape=(None,), dtype=np.int16, chunks=(1 << 16,), compression="lzf")
    kept: dict[str, list] = {k: [] for k in ("track_id", "path", "label", "group", "split", "fold", "offset", "n_samples")}
    seg: dict[str, list] = {"track": [], "start": [], "length": []}
    skipped: dict[str, list] = {"track_id": [], "path": [], "reason": []}
    for i in np.flatnonzero(t["status"] != "ok"):
        skipped["track_id"].append(t["track_id"][i])
        skipped["path"].append(t["path"][i])
        skipped["reason"].append(f"{t['status'][i]}: {t['reason'][i]}" if t["reason"][i] else t["status"][i])

    def decode(i: int):
        path = index.root / t["path"][i]
        try:
            y, _ = _load_audio(path, cfg.sr)
        except AudioError as exc:
            return i, None, str(exc)
        return i, y, ""

    offset = 0
    with progress(len(rows), "segment", enabled=show_progress, unit="tracks") as advance:
        for i, y, reason in ordered_map(decode, rows, jobs=jobs):
            advance(1)
            windows = [] if y is None else window_starts(len(y), cfg, track_id=t["track_id"][i])
            if y is not None and not windows:
                reason = f"{index.root / t['path'][i]}: shorter than one window ({len(y) / cfg.sr:.2f} s < {cfg.win / cfg.sr:.2f} s)"
            if not windows:
                skipped["track_id"].append(t["track_id"][i])
                skipped["path"].append(t["path"][i])
                skipped["reason"].append(reason)
                continue
            pcm = np.clip(np.round(y * 32767.0), -32767, 32767).astype(np.int16)
            audio.resize((offset + len(pcm),))
            audio[offset:] = pcm
            row = len(kept["track_id"])
            for k in ("track_id", "path", "label", "group", "split", "fold"):
                kept[k].append(t[k][i])
            kept["offset"].append(offset)
            kept["n_samples"].append(len(pcm))
            for s, n in windows:
                seg["track"].append(row)
                seg["start"].append(s)
                seg["length"].append(n)
            offset += len(pcm)
    typed = {
        **kept,
        "label": np.asarray(kept["label"], dtype=np.int64),
        "fold": np.asarray(kept["fold"], dtype=np.int64),
        "offset": np.asarray(kept["offset"], dtype=np.int64),
        "n_samples": np.asarray(kept["n_samples"], dtype=np.int64),
    }
    artifacts.write_table(f, "tracks", {k: np.asarray(v, dtype=object) if k in ("track_id", "path", "group", "split") else v for k, v in typed.items()})
    artifacts.write_table(f, "segments", {k: np.asarray(v, dtype=np.int64) for k, v in seg.items()})
    artifacts.write_table(f, "skipped", {k: np.asarray(v, dtype=object) for k, v in skipped.items()})
    return {
        "n_tracks": len(kept["track_id"]),
        "n_segments": len(seg["track"]),
        "n_skipped": len(skipped["track_id"]),
        "skipped": [f"{p}: {r}" for p, r in zip(skipped["path"][:5], skipped["reason"][:5])],
        "audio_hours": offset / cfg.sr / 3600.0,
    }


def _load_audio(path: Path, sr: int) -> tuple[np.ndarray, int]:
    from genre_cli.audio import load

    y, sr = load(path, sr=sr)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 1.0:  # decoders may overshoot; keep the shape, avoid int16 clipping
        y = y / peak
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


def load_segments(path: str | Path) -> Segments:
    """Read the tables of a segments artifact (not the audio)."""
    with artifacts.open_artifact(path, "segment") as (f, meta):
        artifacts.require_dataset(f, "audio", ndim=1, kind="i")
        return Segments(
            path=Path(path), meta=meta, labels=artifacts.get_json_attr(f, "labels", []),
            sr=int(f.attrs["sr"]), win=int(f.attrs["win"]),
            tracks=artifacts.read_table(f, "tracks", path=path), segments=artifacts.read_table(f, "segments", path=path),
            skipped=artifacts.read_table(f, "skipped", path=path), dataset=str(f.attrs.get("dataset", "dataset")),
            config=SegmentConfig.from_params(meta.params),
        )


def read_windows(audio_ds, segs: Segments, rows: np.ndarray) -> np.ndarray:
    """Float32 windows [shape=(len(rows), win)] for segment ``rows`` (zero-padded where short)."""
    out = np.zeros((len(rows), segs.win), dtype=np.float32)
    if len(rows) == 0:
        return out
    tr = segs.segments["track"][rows]
    starts = segs.tracks["offset"][tr] + segs.segments["start"][rows]
    lengths = segs.segments["length"][rows]
    lo, hi = int(starts.min()), int((starts + lengths).max())
    block = audio_ds[lo:hi]  # one contiguous read covering the batch
    for j, (s, n) in enumerate(zip(starts, lengths)):
        out[j, :n] = block[s - lo : s - lo + n]
    out *= AUDIO_SCALE
    return out
