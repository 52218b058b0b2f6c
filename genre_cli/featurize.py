"""``featurize`` stage: compute features for every segment, in chunks, optionally in workers.

Layout of a features artifact (stage ``featurize``)::

    /features/<name>      float32|float16 [shape=(n_segments, ...)]  time x feature matrices
                          (n_frames, n_bins) or vectors (d,); attrs: columns (JSON, vectors);
                          chunked (~1 MB), uncompressed
    /norm/<name>/mean     float32 [shape=(n_bins,) or (d,)]  per last-axis statistics (over
    /norm/<name>/std      segments and frames) of the *train* split, population std (1.0
                          where < 1e-8); all segments when there is no train split
                          (attr ``split`` of /norm says which)
    /segments/<column>    track (row in /tracks), start, length, plus track_id/label/group/split/fold
    /tracks/<column>      track_id, path, label, group, split, fold
    attrs: labels (JSON), feature_config (JSON), segment_config (JSON), sr
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError, UsageError
from genre_cli.features import FeatureConfig, column_names, compute, n_frames, output_shape
from genre_cli.parallel import available_cores, ordered_map, process_context
from genre_cli.segment import Segments, load_segments, read_windows
from genre_cli.stage import StageResult, execute
from genre_cli.ui import progress


def run(
    segments_path: str | Path,
    *,
    config: FeatureConfig,
    out: str | Path | None = None,
    workdir: str | Path | None = None,
    jobs: int = 1,
    float16: bool = False,
    force: bool = False,
    dry_run: bool = False,
    show_progress: bool = True,
) -> StageResult:
    """Compute the features ``config`` selects for every segment of a segments artifact.

    Parameters
    ----------
    segments_path : str or Path
        Segments artifact from ``genre segment``.
    config : FeatureConfig
        Which features and their parameters; ``config.sr`` is taken from the segments file.
        All selected representations share one STFT per segment.
    jobs : int >= 1
        Worker processes (spawned; one BLAS/FFT thread each). The work is cut into fixed
        chunks of :func:`work_rows` segments whatever ``jobs`` is, and results are written
        and reduced in chunk order, so the artifact is bit-identical for any ``jobs``.
    float16 : bool
        Store features as float16 (half the disk; statistics are computed from the float32
        values and stored as float32).

    Returns
    -------
    StageResult
        ``summary``: ``n_segments``, ``shapes`` (name → [n, ...]), ``norm_split`` (``"train"``
        or ``"all"``), ``n_norm_segments``, ``n_skipped_tracks``, ``skipped`` (reasons from
        the segments artifact), ``work_rows``.

    Raises
    ------
    UsageError
        No feature selected, or segments too short for the config.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    segs = load_segments(segments_path)
    cfg = FeatureConfig.from_params({**config.to_params(), "sr": segs.sr}).validate()
    names = cfg.names()
    for name in names:  # fail before any work when segments are too short
        output_shape(name, cfg, segs.win)
    params = {"features": cfg.to_params(), "float16": float16}
    upstream = {"segments": (segs.meta.fingerprint, segs.path)}
    slug = "feat-" + "+".join(_slug_part(n, cfg) for n in names)

    def build(f) -> dict[str, Any]:
        return _build(f, segs, cfg, names, jobs=jobs, float16=float16, show_progress=show_progress)

    return execute(
        stage="featurize", params=params, upstream=upstream, build=build, out=out, workdir=workdir,
        dataset=segs.dataset, slug=slug, force=force, dry_run=dry_run,
        attrs={"labels": segs.labels, "feature_config": cfg.to_params(), "segment_config": segs.config.to_params(), "sr": segs.sr},
    )


def _slug_part(name: str, cfg: FeatureConfig) -> str:
    n = getattr(cfg, name, None)
    if name == "mfcc_frames":
        return f"mfccframes{cfg.mfcc_frames[0]}x{cfg.mfcc_frames[1]}"
    if name == "mfcc" and cfg.deltas:
        return f"mfcc{cfg.mfcc}d"
    return f"{name}{n}" if isinstance(n, int) and not isinstance(n, bool) and n else name


#: Most segments per unit of work; fewer when one segment's audio + outputs are large.
CHUNK = 64
_WORK_BYTES = 64 << 20  # budget of one unit of work's audio + outputs, bytes
_H5_CHUNK_BYTES = 1 << 20  # target size of one HDF5 chunk of a feature dataset


def work_rows(cfg: FeatureConfig, win: int) -> int:
    """Segments per unit of work: at most :data:`CHUNK`, and few enough that the float32
    windows and outputs of one unit stay within ~64 MB (the library itself works through
    the batch in ~4 MB slices of spectrogram). Depends only on ``cfg`` and the window
    length, never on ``jobs``, so the numbers never depend on the parallelism."""
    per_segment = 4 * win + sum(int(np.prod(output_shape(n, cfg, win))) * 4 for n in cfg.names())
    return int(max(1, min(CHUNK, _WORK_BYTES // per_segment)))


# ---------------------------------------------------------------- worker side
# Each worker process keeps the segment tables and an open handle on the segments file.
_SEG_CACHE: dict[str, tuple[Segments, h5py.File]] = {}


def _worker_segments(path: str) -> tuple[Segments, h5py.File]:
    if path not in _SEG_CACHE:
        _SEG_CACHE[path] = (load_segments(path), h5py.File(path, "r"))
    return _SEG_CACHE[path]


def _release_cache() -> None:
    for _, f in _SEG_CACHE.values():
        f.close()
    _SEG_CACHE.clear()


def _moments(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations over all axes but the last (float64)."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if len(flat) == 0:
        return 0, np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
    mean = flat.mean(axis=0)
    return len(flat), mean, ((flat - mean) ** 2).sum(axis=0)


def _chunk_worker(args: tuple[str, np.ndarray, np.ndarray, dict, bool]) -> dict[str, tuple[np.ndarray, tuple]]:
    """Features of one unit of work: ``{name: (values in the storage dtype, moments of the
    float32 values of the rows in stat_mask)}``."""
    path, rows, stat_mask, cfg_params, float16 = args
    segs, f = _worker_segments(path)
    try:
        y = read_windows(f["audio"], segs, rows)
    except OSError as exc:  # a damaged chunk: the input is bad, not the output being written
        raise ArtifactError(f"{path}: cannot read /audio of segments {rows[0]}-{rows[-1]} ({exc}); the segments file is damaged",
                            hint="rerun `genre segment --force`") from None
    feats = compute(y, FeatureConfig.from_params(cfg_params), workers=1)
    dtype = np.float16 if float16 else np.float32
    return {k: (v.astype(dtype, copy=False), _moments(v[stat_mask])) for k, v in feats.items()}


def _merge(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s pairwise update of (count, mean, M2)."""
    na, ma, sa = a
    nb, mb, sb = b
    if nb == 0:
        return a
    if na == 0:
        return b
    n = na + nb
    d = mb - ma
    return n, ma + d * (nb / n), sa + sb + d**2 * (na * nb / n)


# ---------------------------------------------------------------- main side
def _build(f, segs: Segments, cfg: FeatureConfig, names: list[str], *, jobs: int, float16: bool, show_progress: bool) -> dict[str, Any]:
    n = len(segs.segments["track"])
    dtype = np.float16 if float16 else np.float32
    grp = f.create_group("features")
    dsets = {}
    for name in names:
        shape = output_shape(name, cfg, segs.win)
        row_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        chunk_rows = max(1, min(n, _H5_CHUNK_BYTES // max(1, row_bytes)))
        # uncompressed: float features barely compress (deflate-1: ~0.77 for log-mel at ~40 MB/s)
        dsets[name] = grp.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(chunk_rows, *shape) if n else None)
        cols = column_names(name, cfg)
        if cols:
            dsets[name].attrs["columns"] = artifacts.canonical_json(cols)
    tr = segs.segments["track"]
    split = segs.tracks["split"][tr] if n else np.zeros(0, dtype=object)
    stat_mask = split == "train"
    norm_split = "train"
    warnings = []
    if not stat_mask.any():
        stat_mask = np.ones(n, dtype=bool)
        norm_split = "all"
        if n:
            warnings.append("no train split: normalisation statistics are over all segments")
    seg_cfg = segs.config
    if seg_cfg.frames and seg_cfg.frame_hop != cfg.hop_length:
        warnings.append(f"segments were cut for {seg_cfg.frames} frames at hop {seg_cfg.frame_hop} but --hop-length is "
                        f"{cfg.hop_length}: {n_frames(segs.win, cfg)} frames per segment")
    step = work_rows(cfg, segs.win)
    chunks = [np.arange(s, min(s + step, n)) for s in range(0, n, step)]
    params = cfg.to_params()
    work = ((str(segs.path), rows, stat_mask[rows], params, float16) for rows in chunks)
    moments: dict[str, tuple] = {name: (0, 0.0, 0.0) for name in names}
    executor = None
    if jobs > 1 and len(chunks) > 1:
        executor = ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=process_context())
    try:
        with progress(n, "featurize", enabled=show_progress, unit="segments") as advance:
            for rows, feats in zip(chunks, ordered_map(_chunk_worker, work, jobs=jobs, executor=executor)):
                for name in names:
                    x, mom = feats[name]
                    if x.shape[1:] != dsets[name].shape[1:]:
                        raise ArtifactError(f"feature {name!r} has shape {x.shape[1:]}, expected {dsets[name].shape[1:]}")
                    dsets[name][rows[0] : rows[-1] + 1] = x
                    moments[name] = _merge(moments[name], mom)
                advance(len(rows))
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        _release_cache()
    norm = f.create_group("norm")
    norm.attrs["split"] = norm_split
    for name in names:
        count, mean, m2 = moments[name]
        d = dsets[name].shape[-1]
        mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (d,))
        std = np.sqrt(np.broadcast_to(np.asarray(m2, dtype=np.float64), (d,)) / max(count, 1))
        std = np.where(std < 1e-8, 1.0, std)
        g = norm.create_group(name)
        g.create_dataset("mean", data=mean.astype(np.float32))
        g.create_dataset("std", data=std.astype(np.float32))
    t = segs.tracks
    seg_table = {
        "track": tr, "start": segs.segments["start"], "length": segs.segments["length"],
        **{k: t[k][tr] if n else t[k][:0] for k in ("track_id", "label", "group", "split", "fold")},
    }
    artifacts.write_table(f, "segments", seg_table)
    artifacts.write_table(f, "tracks", {k: t[k] for k in ("track_id", "path", "label", "group", "split", "fold")})
    sk = segs.skipped
    return {
        "n_segments": n, "shapes": {k: list(v.shape) for k, v in dsets.items()}, "norm_split": norm_split,
        "n_norm_segments": int(stat_mask.sum()), "n_skipped_tracks": len(sk["track_id"]),
        "skipped": [f"{p}: {r}" for p, r in zip(sk["path"], sk["reason"])], "work_rows": step, "warnings": warnings,
    }


@dataclass
class Features:
    """A features artifact loaded in memory (features arrays are read lazily by name)."""

    path: Path
    meta: artifacts.ArtifactMeta
    labels: list[str]
    names: list[str]
    shapes: dict[str, tuple[int, ...]]
    columns: dict[str, list[str] | None]
    norm: dict[str, tuple[np.ndarray, np.ndarray]]
    segments: dict[str, np.ndarray]
    tracks: dict[str, np.ndarray]
    feature_config: dict[str, Any]
    segment_config: dict[str, Any]
    dataset: str

    def load(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Feature ``name`` as float32 [shape=(n, ...)], optionally only ``rows``."""
        with h5py.File(self.path, "r") as f:
            ds = artifacts.require_dataset(f["features"], name)
            x = ds[()] if rows is None else ds[np.sort(rows)]
        return x.astype(np.float32, copy=False)


def load_features(path: str | Path) -> Features:
    """Open a features artifact (MissingInputError → run `genre featurize` first)."""
    with artifacts.open_artifact(path, "featurize") as (f, meta):
        if not isinstance(f.get("features"), h5py.Group):
            raise ArtifactError(f"{path}: missing group /features")
        names = sorted(f["features"])
        for k in names:  # rows x (frames x bins | columns), float
            artifacts.require_dataset(f["features"], k, kind="f")
            if f["features"][k].ndim not in (2, 3):
                raise ArtifactError(f"{path}: /features/{k} has {f['features'][k].ndim} dimensions, expected 2 (vectors) or 3 (frames x bins)")
        shapes = {k: tuple(f["features"][k].shape[1:]) for k in names}
        columns = {k: artifacts.get_json_attr(f["features"][k], "columns", None) for k in names}
        norm = {}
        for k in names:
            g = f.get(f"norm/{k}")
            if g is not None:
                norm[k] = (artifacts.require_dataset(g, "mean", ndim=1, kind="f")[()], artifacts.require_dataset(g, "std", ndim=1, kind="f")[()])
                if len(norm[k][0]) != shapes[k][-1] or len(norm[k][1]) != shapes[k][-1]:
                    raise ArtifactError(f"{path}: /norm/{k} does not match the last axis of /features/{k} ({shapes[k][-1]})")
        segments = artifacts.read_table(f, "segments", path=path)
        for k in names:
            if f["features"][k].shape[0] != len(segments["track_id"]):
                raise ArtifactError(f"{path}: /features/{k} has {f['features'][k].shape[0]} rows but there are {len(segments['track_id'])} segments")
        labels = artifacts.get_json_attr(f, "labels", [])
        lab = segments.get("label")
        if not isinstance(labels, list) or lab is None or lab.dtype.kind not in "iu":
            raise ArtifactError(f"{path}: needs a JSON list attribute 'labels' and an integer /segments/label column")
        if len(lab) and (lab.min() < -1 or lab.max() >= len(labels)):
            raise ArtifactError(f"{path}: segment labels must index the {len(labels)} labels, found {int(lab.max() if lab.max() >= len(labels) else lab.min())}")
        return Features(
            path=Path(path), meta=meta, labels=labels, names=names, shapes=shapes,
            columns=columns, norm=norm, segments=segments, tracks=artifacts.read_table(f, "tracks", path=path),
            feature_config=artifacts.get_json_attr(f, "feature_config", {}), segment_config=artifacts.get_json_attr(f, "segment_config", {}),
            dataset=str(f.attrs.get("dataset", "dataset")),
        )


def default_jobs() -> int:
    return max(1, min(2, available_cores()))
