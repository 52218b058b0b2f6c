"""Provenance: where an artifact's tracks and split come from, carried forward stage by stage.

The index records how its split was made; every artifact made from it (segments, features,
model, evaluation report) copies that record into its ``provenance`` attribute, so a stage
reads it from its own input instead of walking the upstream chain back to the index.
Artifacts written before this attribute existed are read by walking the chain once
(:func:`legacy`), which is what ``evaluate`` did before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from genre_cli import artifacts
from genre_cli.errors import GenreError

ATTR = "provenance"


@dataclass(frozen=True)
class Provenance:
    """How the tracks of an artifact were split.

    Attributes
    ----------
    dataset : str
        The dataset's name in reports and work folders.
    split_method : str
        How the train/validation/test split was made (``"official (table column 'split')"``,
        ``"random, stratified by label, grouped by 'drummer' (seed 0)"``, ``"GTZAN
        artist-filtered (Kereliuk, Sturm & Larsen 2015)"``, ...); ``"unknown"`` when not recorded.
    group_by : str or None
        The column naming a group (artist, performer), when known.
    group_aware : bool
        The split was computed keeping each group on one side (so a group shared with a model's
        training tracks means the model comes from another split).
    folds : int
        Number of cross-validation folds assigned in the index (0: none).
    index : str or None
        The index artifact the tracks come from (None for an imported feature table).
    """

    dataset: str = "dataset"
    split_method: str = "unknown"
    group_by: str | None = None
    group_aware: bool = False
    folds: int = 0
    index: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_index(self, index: str | Path) -> Provenance:
        return replace(self, index=str(index))


def write(f, prov: Provenance) -> None:
    """Store ``prov`` as the JSON root attribute ``provenance`` of the open file ``f``."""
    f.attrs[ATTR] = artifacts.canonical_json(prov.to_dict())


def read(f) -> Provenance | None:
    """The ``provenance`` attribute of an open file, or None when the file predates it."""
    d = artifacts.get_json_attr(f, ATTR, None)
    return Provenance.from_dict(d) if isinstance(d, dict) else None


def of_index(dataset: str, info: dict[str, Any], params: dict[str, Any]) -> Provenance:
    """The provenance of an index from what fetch recorded: ``info["split_method"]`` (an index
    of the embedded demo without one is ``official``), the ``group_by`` option (else the
    dataset's own ``info["group_by"]``), the ``folds`` option, and whether the split was
    computed keeping groups apart (``info["group_aware"]``, else told by the method: "grouped
    by ...")."""
    opts = (params or {}).get("options", {}) or {}
    group_by = opts.get("group_by") or info.get("group_by")
    method = str(info.get("split_method") or ("official" if info.get("source") == "embedded" else "unknown"))
    aware = info.get("group_aware", bool(group_by) and "grouped by" in method)
    return Provenance(
        dataset=dataset, split_method=method, group_by=group_by, group_aware=bool(aware), folds=int(info.get("folds", 0) or 0)
    )


#: The input role each stage's artifact reaches the index through.
_UPSTREAM = {"evaluate": "features", "train": "features", "featurize": "segments", "segment": "index"}


def legacy(path: str | Path, dataset: str = "dataset") -> Provenance:
    """Provenance of an artifact written before the attribute existed, from its upstream chain
    (model or report -> features -> segments -> index; paths as recorded, or beside the file),
    or from the ``split_method`` attribute of a feature table. Unknown where the chain breaks."""
    import h5py

    out = Provenance(dataset=dataset)
    try:
        where = Path(path)
        node = artifacts.read_meta(where)
        for _ in range(len(_UPSTREAM)):
            if node.stage == "fetch":
                break
            if node.stage == "featurize":
                with h5py.File(where, "r") as f:
                    if "split_method" in f.attrs:  # imported from a table: its own split
                        return Provenance(dataset=dataset, split_method=str(f.attrs["split_method"]))
            up = _upstream_path(node, _UPSTREAM.get(node.stage, ""), where)
            if up is None:
                return out
            where, node = up, artifacts.read_meta(up)
        if node.stage != "fetch":
            return out
        with h5py.File(where, "r") as f:
            info = artifacts.get_json_attr(f, "info", {}) or {}
    except (GenreError, OSError):
        return out
    return of_index(dataset, info, node.params).with_index(where)


def _upstream_path(meta: artifacts.ArtifactMeta, role: str, near: Path) -> Path | None:
    up = meta.upstream.get(role)
    if not up:
        return None
    p = Path(up.get("path", ""))
    for cand in (p, near.parent / p.name):
        if cand.is_file():
            return cand
    return None
