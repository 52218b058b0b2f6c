"""The index artifact (stage ``fetch``): one row per track, with labels, groups and splits.

Layout (schema 1)::

    /tracks/<column>     one row per track, columns of ``genre_cli.datasets.TRACK_COLUMNS``
    attrs: labels (JSON list), root (folder the paths are relative to), dataset, info (JSON),
           provenance (JSON, :class:`~genre_cli.formats.provenance.Provenance`; files made
           before it existed get it from ``info`` and ``params`` when read)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genre_cli import artifacts
from genre_cli.formats import provenance
from genre_cli.formats.provenance import Provenance

KIND = artifacts.register_kind("fetch", schema=1, maker="genre fetch")


def write(f, index, *, dataset: str, params: dict[str, Any]) -> Provenance:
    """Write a :class:`~genre_cli.datasets.TrackIndex` into the open artifact ``f``; returns its provenance."""
    artifacts.write_table(f, "tracks", index.tracks)
    f.attrs["labels"] = artifacts.canonical_json(index.labels)
    f.attrs["root"] = str(Path(index.root).resolve())
    f.attrs["info"] = artifacts.canonical_json(index.info)
    prov = provenance.of_index(dataset, index.info, params)
    provenance.write(f, prov)
    return prov


@dataclass
class Index:
    """An index artifact loaded in memory."""

    path: Path
    meta: artifacts.ArtifactMeta
    root: Path
    labels: list[str]
    tracks: dict[str, np.ndarray]
    dataset: str
    info: dict[str, Any]
    provenance: Provenance


def read(path: str | Path) -> Index:
    """Read an index artifact (MissingInputError: run `genre fetch` first)."""
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        tracks = artifacts.read_table(f, "tracks", path=path)
        labels = artifacts.get_json_attr(f, "labels", [])
        root = Path(str(f.attrs.get("root", ".")))
        dataset = str(f.attrs.get("dataset", "dataset"))
        info = artifacts.get_json_attr(f, "info", {}) or {}
        prov = provenance.read(f) or provenance.of_index(dataset, info, meta.params)
    return Index(Path(path), meta, root, labels, tracks, dataset, info, prov.with_index(path))
