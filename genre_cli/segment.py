"""``segment`` stage: decode each track once and cut it into windows.

Audio is decoded (:mod:`genre_cli.audio`), downmixed to mono, resampled with soxr and stored
*once per track* (float32 by default, compressed, chunked) in the artifact; the segment table
holds ``(track, start, length)`` so overlapping windows cost no extra storage and
``featurize`` never decodes again. Windows: :mod:`genre_cli.windows`; layout:
:mod:`genre_cli.formats.segments`.

Memory: decoding runs in ``jobs`` threads through a bounded ordered map, so at most
``2 * jobs`` decoded tracks (storage dtype, plus one float32 track per thread) are in memory.
All-silent audio is valid audio and is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import audio
from genre_cli.errors import AudioError, InputError, UsageError
from genre_cli.formats import index as index_format
from genre_cli.formats import segments as seg_format
from genre_cli.parallel import ordered_map
from genre_cli.stage import StageResult, execute
from genre_cli.testhooks import pause_point
from genre_cli.ui import progress
from genre_cli.windows import SegmentConfig, window_starts


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
        Either way it is stored in chunks of ``formats.segments.AUDIO_CHUNK`` samples.
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
        ``summary``: ``n_tracks``, ``n_segments``, ``n_skipped``, ``skipped`` (``path: reason``
        per skipped track), ``audio_hours``, ``win`` and ``sr`` (window length in samples at
        ``sr`` Hz), ``n_fewer`` (tracks that gave fewer windows than ``--random K`` /
        ``--first N``; a warning says how many).
    """
    cfg = config or SegmentConfig()
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if audio_dtype not in seg_format.AUDIO_DTYPES:
        raise UsageError(f"unknown audio dtype {audio_dtype!r}; valid: {', '.join(seg_format.AUDIO_DTYPES)}")
    index = index_format.read(index_path)
    params = seg_format.params(cfg, compress=compress, audio_dtype=audio_dtype)
    upstream = {"index": (index.meta.fingerprint, index.path)}

    def build(f) -> dict[str, Any]:
        return _build(f, index, cfg, jobs=jobs, compress=compress, dtype=np.dtype(audio_dtype), show_progress=show_progress)

    return execute(
        stage=seg_format.KIND.stage,
        params=params,
        upstream=upstream,
        build=build,
        out=out,
        workdir=workdir,
        dataset=index.dataset,
        slug=cfg.slug(),
        force=force,
        dry_run=dry_run,
        attrs=seg_format.attrs(labels=index.labels, cfg=cfg, audio_dtype=audio_dtype, prov=index.provenance),
    )


def _build(f, index, cfg: SegmentConfig, *, jobs: int, compress: bool, dtype: np.dtype, show_progress: bool) -> dict[str, Any]:
    t = index.tracks
    rows = np.flatnonzero(t["status"] == "ok")
    audio_ds = seg_format.create_audio(f, dtype, compress=compress)
    kept: dict[str, list] = {k: [] for k in (*seg_format.TRACK_COLUMNS, "offset", "n_samples")}
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
            y, _ = _load_audio(path, cfg.sr, peak_limit=seg_format.PEAK_LIMIT[dtype.name])
        except AudioError as exc:
            return i, 0, [], None, str(exc)
        windows = window_starts(len(y), cfg, track_id=t["track_id"][i])
        if not windows:
            return i, len(y), [], None, f"{path}: shorter than one window ({len(y) / cfg.sr:.2f} s < {cfg.win / cfg.sr:.2f} s)"
        return i, len(y), windows, seg_format.encode(y, dtype), ""

    offset = 0  # in samples, always a multiple of AUDIO_CHUNK
    n_short = 0  # decoded, but shorter than one window
    n_fewer = 0  # --random K / --first N: gave fewer than K (N) windows
    with progress(len(rows), "segment", enabled=show_progress, unit="tracks") as advance:
        for i, n, windows, pcm, reason in ordered_map(decode, rows, jobs=jobs):
            advance(1)
            if not windows:
                n_short += n > 0
                skipped["track_id"].append(t["track_id"][i])
                skipped["path"].append(t["path"][i])
                skipped["reason"].append(reason)
                continue
            n_fewer += cfg.policy in ("random", "first") and len(windows) < cfg.count
            audio_ds.resize((offset + len(pcm),))
            audio_ds[offset:] = pcm  # whole chunks: HDF5 filters each and writes it once
            row = len(kept["track_id"])
            for k in seg_format.TRACK_COLUMNS:
                kept[k].append(t[k][i])
            kept["offset"].append(offset)
            kept["n_samples"].append(n)
            for s, length in windows:
                seg["track"].append(row)
                seg["start"].append(s)
                seg["length"].append(length)
            offset += len(pcm)
            pause_point("segment:track")  # test-only (genre_cli.testhooks); inert unless GENRE_TEST_PAUSE_AT is set
    if not seg["track"]:  # an empty segments file would only fail later, at train
        raise _no_windows(index, cfg, n_short, skipped["reason"])
    typed = {
        **{k: np.asarray(kept[k], dtype=object) for k in ("track_id", "path", "group", "split")},
        **{k: np.asarray(kept[k], dtype=np.int64) for k in ("label", "fold", "offset", "n_samples")},
    }
    tr = np.asarray(seg["track"], dtype=np.int64)
    seg_format.write_tables(f, typed, {"track": tr, "start": seg["start"], "length": seg["length"]}, skipped)
    n_audio = int(typed["n_samples"].sum())
    return {
        "n_tracks": len(kept["track_id"]),
        "n_segments": len(tr),
        "n_skipped": len(skipped["track_id"]),
        "skipped": [f"{p}: {r}" for p, r in zip(skipped["path"], skipped["reason"])],
        "audio_hours": n_audio / cfg.sr / 3600.0,
        "win": cfg.win,
        "sr": cfg.sr,
        "n_fewer": n_fewer,
        "warnings": [_fewer(cfg, n_fewer, len(kept["track_id"]))] if n_fewer else [],
    }


def _fewer(cfg: SegmentConfig, n: int, n_tracks: int) -> str:
    """The note on tracks that gave fewer than ``--random K`` / ``--first N`` windows."""
    length = f"{cfg.win / cfg.sr:g} s"
    if cfg.policy == "random":
        return (
            f"{n} of {n_tracks} tracks are too short for {cfg.count} non-overlapping {length} windows and gave fewer "
            "(as many as fit): those tracks weigh less in training and evaluation"
        )
    return f"{n} of {n_tracks} tracks have fewer than {cfg.count} windows of {length} and gave all they have"


def _no_windows(index, cfg: SegmentConfig, n_short: int, reasons: list[str]) -> InputError:
    """Why no track gave a window, and what to change."""
    n = len(index.tracks["track_id"])
    length = f"{cfg.win / cfg.sr:g} s"
    pad = "use --last pad (a short track becomes one zero-padded window) or shorter windows"
    if n == 0:
        return InputError(f"{index.path}: the index has no tracks; nothing to segment")
    if n_short == n:
        return InputError(f"{index.path}: all {n} tracks are shorter than one window ({length}); nothing was written", hint=pad)
    parts = [f"{n_short} shorter than one window ({length})"] if n_short else []
    parts.append(f"{n - n_short} unusable (e.g. {reasons[0]})" if n_short == 0 else f"{n - n_short} unusable")
    return InputError(
        f"{index.path}: none of the {n} tracks gave a window: {'; '.join(parts)}; nothing was written",
        hint=pad if n_short else f"`genre info {index.path}` lists the tracks and why each is not ok",
    )


def _load_audio(path: Path, sr: int, *, peak_limit: float | None = 1.0) -> tuple[np.ndarray, int]:
    y, sr = audio.load(path, sr=sr)
    peak = float(np.max(np.abs(y))) if len(y) and peak_limit is not None else 0.0
    if peak_limit is not None and peak > peak_limit:  # decoders and resamplers may overshoot; keep the shape, avoid clipping
        y = y * np.float32(peak_limit / peak)
    return y, sr
