"""Running one stage: fingerprint, skip-if-up-to-date, dry run, atomic write, output naming.

Every stage module builds its parameters and upstream fingerprints, then calls
:func:`execute` with a ``build`` callback that fills the (temporary) HDF5 file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from genre_cli import artifacts

DEFAULT_WORKDIR = "genre-work"


@dataclass
class StageResult:
    """What a stage did. ``status``: ``ran``, ``skipped`` (up to date) or ``would run`` (dry run)."""

    stage: str
    path: Path
    fingerprint: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status == "ran"


def resolve_workdir(workdir: str | Path | None) -> Path:
    """``workdir`` if given, else ``$GENRE_WORKDIR``, else ``./genre-work``."""
    return Path(workdir or os.environ.get("GENRE_WORKDIR") or DEFAULT_WORKDIR)


def slugify(text: str) -> str:
    """File-name-safe form of ``text`` (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def default_output(workdir: str | Path | None, dataset: str, slug: str, fp: str) -> Path:
    """``<workdir>/<dataset>/<slug>-<fingerprint[:8]>.h5``: different settings live side by side."""
    return resolve_workdir(workdir) / slugify(dataset) / f"{slugify(slug)}-{fp[:8]}.h5"


def execute(
    *,
    stage: str,
    params: dict[str, Any],
    upstream: dict[str, tuple[str, str | Path]],
    build: Callable[[h5py.File], dict[str, Any] | None],
    out: str | Path | None,
    workdir: str | Path | None,
    dataset: str,
    slug: str,
    force: bool = False,
    dry_run: bool = False,
    attrs: dict[str, Any] | None = None,
    writer: bool = True,
) -> StageResult:
    """Run ``build`` into a new artifact unless an up-to-date one exists.

    Parameters
    ----------
    upstream : dict[str, (fingerprint, path)]
        Inputs by role.
    build : callable(h5py.File) -> dict or None
        Writes the stage's datasets; returns a summary (its ``"warnings"`` key, a list of
        strings, is lifted into :attr:`StageResult.warnings`).
    out : path or None
        Explicit output; ``None`` derives one with :func:`default_output`.
    writer : bool
        False for a process that takes part in the work but does not write (a DDP rank other
        than 0): after the same up-to-date and dry-run decisions, ``build(None)`` runs and
        nothing is written.
    """
    fp = artifacts.fingerprint(stage, params, {k: v[0] for k, v in upstream.items()})
    path = Path(out) if out else default_output(workdir, dataset, slug, fp)
    if not force and artifacts.is_up_to_date(path, fp):
        return StageResult(stage, path, fp, "skipped")
    if dry_run:
        return StageResult(stage, path, fp, "would run")
    if not writer:
        summary = build(None) or {}
        return StageResult(stage, path, fp, "ran", summary, list(summary.pop("warnings", [])))
    all_attrs = {"dataset": dataset, **(attrs or {})}
    with artifacts.write_artifact(path, stage=stage, params=params, upstream=upstream, attrs=all_attrs) as f:
        summary = build(f) or {}
    warnings = list(summary.pop("warnings", []))
    return StageResult(stage, path, fp, "ran", summary, warnings)


def planned_fingerprint(stage: str, params: dict[str, Any], upstream: dict[str, tuple[str, str | Path]]) -> str:
    """The fingerprint :func:`execute` would give (for dry runs across stages)."""
    return artifacts.fingerprint(stage, params, {k: v[0] for k, v in upstream.items()})
