"""``genre info``: describe an artifact (stage, params, upstream chain, datasets, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from genre_cli import artifacts
from genre_cli.errors import GenreError
from genre_cli.formats import provenance


def _inputs(f: h5py.File) -> tuple[dict[str, str] | None, dict[str, list[int]]]:
    """A model's ``{slot: feature}`` and ``{slot: shape}``, or ``(None, {})`` when malformed
    (``genre info`` describes a damaged file; the commands that use it refuse it)."""
    try:
        inputs = artifacts.get_json_attr(f, "inputs", None)
        shapes = artifacts.get_json_attr(f, "input_shapes", {})
    except GenreError:
        return None, {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in inputs.items()):
        return None, {}
    ok = isinstance(shapes, dict)
    shapes = {
        k: v
        for k, v in (shapes.items() if ok else ())
        if isinstance(v, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in v)
    }
    return inputs, shapes


def describe(path: str | Path) -> dict[str, Any]:
    """Everything ``genre info`` shows, as a dict. Incomplete files are described, not refused.

    ``path`` may name a built-in model (``genres``, ``musicnn-msd``; :func:`genre_cli.catalog.resolve_path`).
    ``card``: a model card (training data, split, measured accuracy) when the file has one, or
    what a pretrained weight file says about its training data, licence and citation.
    """
    from genre_cli.catalog import resolve_path

    path = resolve_path(path)
    meta = artifacts.read_meta(path)
    datasets: list[tuple[str, tuple, str]] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: datasets.append((name, obj.shape, str(obj.dtype))) if isinstance(obj, h5py.Dataset) else None)
        labels = artifacts.get_json_attr(f, "labels", [])
        prov = provenance.read(f)
        inputs, input_shapes = _inputs(f) if meta.stage == "train" else (None, {})
        card = artifacts.get_json_attr(f, "card", None) or _pretrained_card(f)
    chain = []
    for role, up in meta.upstream.items():
        p = Path(up.get("path", ""))
        status, stage = "missing", ""
        if p.exists():
            try:
                m = artifacts.read_meta(p)
                stage = m.stage
                status = "matches" if m.fingerprint == up["fingerprint"] else "changed since"
            except GenreError:
                status = "unreadable"
        elif role == "source":
            status = "source"
        chain.append({"role": role, "path": str(p), "stage": stage, "status": status, "fingerprint": up.get("fingerprint", "")})
    return {
        "path": str(path),
        "stage": meta.stage,
        "schema_version": meta.schema_version,
        "complete": meta.complete,
        "created": meta.created,
        "fingerprint": meta.fingerprint,
        "params": meta.params,
        "versions": meta.versions,
        "dataset": meta.extra.get("dataset"),
        "labels": labels,
        "chain": chain,
        "datasets": datasets,
        "provenance": prov.to_dict() if prov is not None else None,
        "inputs": inputs,  # a model: input slot -> feature
        "input_shapes": input_shapes,
        "card": card if isinstance(card, dict) else None,
    }


def _pretrained_card(f: h5py.File) -> dict[str, Any] | None:
    """What a pretrained weight file says about itself (training data, licence, citation)."""
    if f.attrs.get("stage") != "pretrained":
        return None
    keys = {"name": "name", "dataset": "training_data", "output": "output", "license": "license", "citation": "citation"}
    return {out: str(f.attrs[k]) for k, out in keys.items() if k in f.attrs}
