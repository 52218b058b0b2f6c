"""The features artifact (stage ``featurize``): per-segment feature arrays, normalisation, rows.

Written by ``genre featurize`` (computed from a segments artifact) and by ``genre featurize
--table`` (imported from a CSV table: one vector feature ``table``, one "segment" per track).

Layout (schema 1)::

    /features/<name>      float32|float16 [shape=(n_segments, ...)]  time x feature matrices
                          (n_frames, n_bins) or vectors (d,); attrs: columns (JSON, vectors);
                          computed features are chunked (~1 MB), uncompressed
    /norm/<name>/mean     float32 [shape=(n_bins,) or (d,)]  per last-axis statistics (over
    /norm/<name>/std      segments and frames) of the *train* split, population std (1.0
                          where < STD_FLOOR); all segments when there is no train split
                          (attr ``split`` of /norm says which)
    /segments/<column>    track (row in /tracks), start, length, plus track_id/label/group/split/fold
    /tracks/<column>      track_id, path, label, group, split, fold
    attrs: labels (JSON), feature_config (JSON), segment_config (JSON), sr (computed features),
           provenance (JSON; files made before it existed get it from their upstream chain,
           or from the ``split_method`` attribute imported tables had)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.errors import ArtifactError
from genre_cli.formats import provenance
from genre_cli.formats.provenance import Provenance

KIND = artifacts.register_kind("featurize", schema=1, maker="genre featurize")

#: A normalisation std below this is replaced by 1.0 (a constant column stays constant).
STD_FLOOR = 1e-8
#: Target size of one HDF5 chunk of a computed feature dataset, bytes.
H5_CHUNK_BYTES = 1 << 20
#: Per-track columns of ``/tracks``, copied onto each row of ``/segments``.
ROW_COLUMNS = ("track_id", "label", "group", "split", "fold")


# ----------------------------------------------------------------------------- statistics


def moments(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations over all axes but the last (float64)."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if len(flat) == 0:
        return 0, np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
    mean = flat.mean(axis=0)
    return len(flat), mean, ((flat - mean) ** 2).sum(axis=0)


def merge(a: tuple, b: tuple) -> tuple:
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


def norm_stats(mom: tuple, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` float32 [shape=(width,)] from moments: population std, floored at
    :data:`STD_FLOOR` (replaced by 1.0)."""
    count, mean, m2 = mom
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), (width,))
    std = np.sqrt(np.broadcast_to(np.asarray(m2, dtype=np.float64), (width,)) / max(count, 1))
    std = np.where(std < STD_FLOOR, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


# ----------------------------------------------------------------------------- writing


def create_feature(f, name: str, *, n: int, shape: tuple[int, ...], dtype: type, columns: list[str] | None) -> h5py.Dataset:
    """An empty ``/features/<name>`` of ``n`` rows, chunked in ~:data:`H5_CHUNK_BYTES` blocks
    of whole rows, uncompressed (float features barely compress: deflate-1 gave ~0.77 for
    log-mel at ~40 MB/s)."""
    grp = f.require_group("features")
    row_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    chunk_rows = max(1, min(n, H5_CHUNK_BYTES // max(1, row_bytes)))
    ds = grp.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(chunk_rows, *shape) if n else None)
    if columns:
        ds.attrs["columns"] = artifacts.canonical_json(columns)
    return ds


def write_feature(f, name: str, data: np.ndarray, *, columns: list[str] | None) -> h5py.Dataset:
    """``/features/<name>`` holding ``data`` as given (an imported table)."""
    ds = f.require_group("features").create_dataset(name, data=data)
    if columns:
        ds.attrs["columns"] = artifacts.canonical_json(columns)
    return ds


def write_norm(f, stats: dict[str, tuple[np.ndarray, np.ndarray]], *, split: str) -> None:
    """``/norm/<name>/{mean,std}`` for each feature; ``split``: ``train`` or ``all``."""
    norm = f.create_group("norm")
    norm.attrs["split"] = split
    for name, (mean, std) in stats.items():
        g = norm.create_group(name)
        g.create_dataset("mean", data=mean)
        g.create_dataset("std", data=std)


def write_rows(f, segments: dict[str, np.ndarray], tracks: dict[str, np.ndarray]) -> None:
    """``/segments`` (track, start, length, then :data:`ROW_COLUMNS` of each row's track) and
    ``/tracks`` (``track_id, path, label, group, split, fold``)."""
    tr = segments["track"]
    n = len(tr)
    table = {
        "track": tr,
        "start": segments["start"],
        "length": segments["length"],
        **{k: tracks[k][tr] if n else tracks[k][:0] for k in ROW_COLUMNS},
    }
    artifacts.write_table(f, "segments", table)
    artifacts.write_table(f, "tracks", {k: tracks[k] for k in ("track_id", "path", "label", "group", "split", "fold")})


def attrs(
    *, labels: list[str], feature_config: dict[str, Any], segment_config: dict[str, Any], prov: Provenance, sr: int | None = None
) -> dict[str, Any]:
    """Root attributes of a features artifact (given to :func:`genre_cli.stage.execute`)."""
    out: dict[str, Any] = {"labels": labels, "feature_config": feature_config, "segment_config": segment_config}
    if sr is not None:
        out["sr"] = sr
    out[provenance.ATTR] = prov.to_dict()
    return out


# ----------------------------------------------------------------------------- reading


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
    provenance: Provenance

    def load(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Feature ``name`` as float32 [shape=(n, ...)], optionally only ``rows``."""
        with h5py.File(self.path, "r") as f:
            ds = artifacts.require_dataset(f["features"], name)
            x = ds[()] if rows is None else ds[np.sort(rows)]
        return x.astype(np.float32, copy=False)


def read(path: str | Path) -> Features:
    """Open a features artifact (MissingInputError: run `genre featurize` first)."""
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        if not isinstance(f.get("features"), h5py.Group):
            raise ArtifactError(f"{path}: missing group /features")
        names = sorted(f["features"])
        for k in names:  # rows x (frames x bins | columns), float
            artifacts.require_dataset(f["features"], k, kind="f")
            if f["features"][k].ndim not in (2, 3):
                raise ArtifactError(
                    f"{path}: /features/{k} has {f['features'][k].ndim} dimensions, expected 2 (vectors) or 3 (frames x bins)"
                )
        shapes = {k: tuple(f["features"][k].shape[1:]) for k in names}
        columns = {k: artifacts.get_json_attr(f["features"][k], "columns", None) for k in names}
        norm = {}
        for k in names:
            g = f.get(f"norm/{k}")
            if g is not None:
                norm[k] = (
                    artifacts.require_dataset(g, "mean", ndim=1, kind="f")[()],
                    artifacts.require_dataset(g, "std", ndim=1, kind="f")[()],
                )
                if len(norm[k][0]) != shapes[k][-1] or len(norm[k][1]) != shapes[k][-1]:
                    raise ArtifactError(f"{path}: /norm/{k} does not match the last axis of /features/{k} ({shapes[k][-1]})")
        segments = artifacts.read_table(f, "segments", path=path)
        for k in names:
            if f["features"][k].shape[0] != len(segments["track_id"]):
                raise ArtifactError(
                    f"{path}: /features/{k} has {f['features'][k].shape[0]} rows but there are {len(segments['track_id'])} segments"
                )
        labels = artifacts.get_json_attr(f, "labels", [])
        lab = segments.get("label")
        if not isinstance(labels, list) or lab is None or lab.dtype.kind not in "iu":
            raise ArtifactError(f"{path}: needs a JSON list attribute 'labels' and an integer /segments/label column")
        if len(lab) and (lab.min() < -1 or lab.max() >= len(labels)):
            raise ArtifactError(
                f"{path}: segment labels must index the {len(labels)} labels, found "
                f"{int(lab.max() if lab.max() >= len(labels) else lab.min())}"
            )
        dataset = str(f.attrs.get("dataset", "dataset"))
        prov = provenance.read(f)
        feats = Features(
            path=Path(path),
            meta=meta,
            labels=labels,
            names=names,
            shapes=shapes,
            columns=columns,
            norm=norm,
            segments=segments,
            tracks=artifacts.read_table(f, "tracks", path=path),
            feature_config=artifacts.get_json_attr(f, "feature_config", {}),
            segment_config=artifacts.get_json_attr(f, "segment_config", {}),
            dataset=dataset,
            provenance=prov or Provenance(dataset=dataset),
        )
    if prov is None:  # written before provenance was recorded
        feats.provenance = provenance.legacy(path, dataset)
    return feats
