"""``featurize`` stage: compute features for every segment, in chunks, optionally in workers.

Layout of a features artifact (stage ``featurize``)::

    /features/<name>      float32|float16 [shape=(n_segments, ...)]  time x feature matrices
                          (n_frames, n_bins) or vectors (d,); attrs: columns (JSON, vectors)
    /norm/<name>/mean     float32 [shape=(n_bins,) or (d,)]  statistics of the *train* split
    /norm/<name>/std      (all segments when the dataset has no train split)
    /segments/<column>    track (row in /tracks), start, length, plus track_id/label/group/split/fold
    /tracks/<column>      track_id, path, label, group, split, fold
    attrs: labels (JSON), feature_config (JSON), segment_config (JSON), sr
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError
from genre_cli.features import FeatureConfig, column_names, compute, output_shape
from genre_cli.parallel import ordered_map
from genre_cli.segment import Segments, load_segments, read_windows
from genre_cli.stage import StageResult, execute
from genre_cli.ui import progress

CHUNK = 64  # segments per unit of work: fixed, so --jobs never changes the numbers


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
    config : FeatureConfig
        Which features and their parameters; ``config.sr`` is taken from the segments file.
    jobs : int >= 1
        Worker processes. Output is identical for any value.
    float16 : bool
        Store features as float16 (half the disk; statistics stay float32).
    """
    segs = load_segments(segments_path)
    cfg = FeatureConfig.from_params({**config.to_params(), "sr": segs.sr})
    names = cfg.names()
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
    return f"{name}{n}" if isinstance(n, int) and not isinstance(n, bool) and n else name


def _chunk_worker(args: tuple[str, np.ndarray, dict]) -> dict[str, np.ndarray]:
    path, rows, cfg_params = args
    segs = _worker_segments(path)
    with h5py.File(path, "r") as f:
        y = read_windows(f["audio"], segs, rows)
    return compute(y, FeatureConfig.from_params(cfg_params))


_SEG_CACHE: dict[str, Segments] = {}


def _worker_segments(path: str) -> Segments:
    if path not in _SEG_CACHE:
        _SEG_CACHE[path] = load_segments(path)
    return _SEG_CACHE[path]


def _build(f, segs: Segments, cfg: FeatureConfig, names: list[str], *, jobs: int, float16: bool, show_progress: bool) -> dict[str, Any]:
    n = len(segs.segments["track"])
    dtype = np.float16 if float16 else np.float32
    grp = f.create_group("features")
    dsets = {}
    for name in names:
        shape = output_shape(name, cfg, segs.win)
        chunk_rows = max(1, min(CHUNK, n))
        dsets[name] = grp.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(chunk_rows, *shape) if n else None, compression="lzf" if n else None)
        cols = column_names(name, cfg)
        if cols:
            dsets[name].attrs["columns"] = artifacts.canonical_json(cols)
    tr = segs.segments["track"]
    split = segs.tracks["split"][tr] if n else np.zeros(0, dtype=object)
    stat_mask = split == "train"
    if not stat_mask.any():
        stat_mask = np.ones(n, dtype=bool)
    sums: dict[str, list[np.ndarray]] = {}
    chunks = [np.arange(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    work = [(str(segs.path), rows, cfg.to_params()) for rows in chunks]
    executor = None
    if jobs > 1 and len(chunks) > 1:
        executor = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    try:
        with progress(n, "featurize", enabled=show_progress, unit="segments") as advance:
            for rows, feats in zip(chunks, ordered_map(_chunk_worker, work, jobs=jobs, executor=executor)):
                for name in names:
                    x = feats[name]
                    if x.shape[1:] != dsets[name].shape[1:]:
                        raise ArtifactError(f"feature {name!r} has shape {x.shape[1:]}, expected {dsets[name].shape[1:]}")
                    dsets[name][rows[0] : rows[-1] + 1] = x.astype(dtype, copy=False)
                    sel = x[stat_mask[rows]].astype(np.float64)
                    flat = sel.reshape(-1, x.shape[-1])
                    acc = sums.setdefault(name, [np.zeros(x.shape[-1]), np.zeros(x.shape[-1]), np.zeros(1)])
                    acc[0] += flat.sum(0)
                    acc[1] += (flat**2).sum(0)
                    acc[2] += len(flat)
                advance(len(rows))
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    norm = f.create_group("norm")
    for name in names:
        s, ss, c = sums.get(name, [np.zeros(1), np.ones(1), np.ones(1)])
        mean = s / max(c[0], 1)
        std = np.sqrt(np.maximum(ss / max(c[0], 1) - mean**2, 0.0))
        std[std < 1e-8] = 1.0
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
    return {"n_segments": n, "shapes": {k: list(v.shape) for k, v in dsets.items()}, "n_skipped_tracks": len(segs.skipped["track_id"])}


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
        if "features" not in f:
            raise ArtifactError(f"{path}: missing group /features")
        names = sorted(f["features"])
        shapes = {k: tuple(f["features"][k].shape[1:]) for k in names}
        columns = {k: artifacts.get_json_attr(f["features"][k], "columns", None) for k in names}
        norm = {}
        for k in names:
            g = f.get(f"norm/{k}")
            if g is not None:
                norm[k] = (artifacts.require_dataset(g, "mean")[()], artifacts.require_dataset(g, "std")[()])
        segments = artifacts.read_table(f, "segments", path=path)
        for k in names:
            if f["features"][k].shape[0] != len(segments["track_id"]):
                raise ArtifactError(f"{path}: /features/{k} has {f['features'][k].shape[0]} rows but there are {len(segments['track_id'])} segments")
        return Features(
            path=Path(path), meta=meta, labels=artifacts.get_json_attr(f, "labels", []), names=names, shapes=shapes,
            columns=columns, norm=norm, segments=segments, tracks=artifacts.read_table(f, "tracks", path=path),
            feature_config=artifacts.get_json_attr(f, "feature_config", {}), segment_config=artifacts.get_json_attr(f, "segment_config", {}),
            dataset=str(f.attrs.get("dataset", "dataset")),
        )


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))
