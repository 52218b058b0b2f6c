"""``genre info``: describe an artifact (stage, params, upstream chain, datasets, labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from genre_cli import artifacts
from genre_cli.errors import GenreError, InputError
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
    from genre_cli.catalog import BUILTINS, resolve_path

    builtin = isinstance(path, str) and path in BUILTINS
    path = resolve_path(path, what="artifact")
    if Path(path).is_dir():
        raise InputError(f"{path}: a directory, not an artifact; give one of its .h5 files (genre info FILE)")
    meta = artifacts.read_meta(path)
    datasets: list[tuple[str, tuple, str]] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: datasets.append((name, obj.shape, str(obj.dtype))) if isinstance(obj, h5py.Dataset) else None)
        labels = artifacts.get_json_attr(f, "labels", [])
        prov = provenance.read(f)
        cv_folds = _cv_folds(f) if meta.stage == "cv" else None
        inputs, input_shapes = _inputs(f) if meta.stage == "train" else (None, {})
        card = artifacts.get_json_attr(f, "card", None) or _pretrained_card(f)
        training = None
        if meta.stage == "train":  # the settings used and where each came from (flag / recipe / paper / plain)
            training = {
                "train": artifacts.get_json_attr(f, "train", {}),
                "sources": artifacts.get_json_attr(f, "train_sources", {}),
                "notes": artifacts.get_json_attr(f, "train_notes", {}),
                "best_epoch": int(f.attrs["best_epoch"]) if "best_epoch" in f.attrs else None,
                "epochs_run": int(f.attrs["epochs_run"]) if "epochs_run" in f.attrs else None,
            }
    chain = [_upstream(role, up, builtin=builtin, beside=Path(path).parent) for role, up in meta.upstream.items()]
    prov_dict = prov.to_dict() if prov is not None else None
    if prov_dict is not None and cv_folds is not None:  # a cv report: how its folds were made, not the index's split
        prov_dict |= cv_folds
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
        "provenance": prov_dict,
        "inputs": inputs,  # a model: input slot -> feature
        "input_shapes": input_shapes,
        "card": card if isinstance(card, dict) else None,
        "training": training,
    }


#: Upstream roles that name inputs outside the toolkit (a folder, an archive, a CSV), not artifacts.
_SOURCE_ROLES = ("source", "table", "labels")


def _upstream(role: str, up: dict[str, Any], *, builtin: bool, beside: Path) -> dict[str, Any]:
    """One upstream entry with its status: ``matches`` / ``changed since`` / ``missing`` /
    ``unreadable`` for an artifact; ``source`` (present) for a dataset folder, archive or table;
    ``not shipped`` for the intermediate files a built-in model was made from. A relative path
    (as given on the command line that made the artifact) is looked for from here, then from
    the artifact's own folder (``beside``)."""
    p = Path(up.get("path", ""))
    if up.get("path") and not p.is_absolute() and not p.exists() and (beside / p).exists():
        p = beside / p
    stage = ""
    if role in _SOURCE_ROLES or (p.exists() and (p.is_dir() or p.suffix.lower() not in (".h5", ".hdf5"))):
        status = "source" if p.exists() or "://" in str(up.get("path", "")) or not up.get("path") else "source, missing"
    elif p.exists():
        try:
            m = artifacts.read_meta(p)
            stage = m.stage
            status = "matches" if m.fingerprint == up["fingerprint"] else "changed since"
        except GenreError:
            status = "unreadable"
    else:
        status = "not shipped: a file of the build, see the card's command" if builtin else "missing"
    return {"role": role, "path": str(p), "stage": stage, "status": status, "fingerprint": up.get("fingerprint", "")}


def _cv_folds(f: h5py.File) -> dict[str, Any] | None:
    """A cv report's own split description (its folds), from its report attribute."""
    import json

    try:
        report = json.loads(f.attrs["report"])
        return {"split_method": report["split_method"], "group_aware": bool(report["group_disjoint"]), "folds": int(report["n_folds"])}
    except (KeyError, TypeError, ValueError):
        return None


def _pretrained_card(f: h5py.File) -> dict[str, Any] | None:
    """What a pretrained weight file says about itself (training data, licence, citation)."""
    if f.attrs.get("stage") != "pretrained":
        return None
    keys = {"name": "name", "dataset": "training_data", "output": "output", "license": "license", "citation": "citation"}
    return {out: str(f.attrs[k]) for k, out in keys.items() if k in f.attrs}
