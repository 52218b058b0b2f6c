"""The cross-validation report artifact (stage ``cv``), with a JSON copy beside it.

Layout (schema 1)::

    /model<i>/fold<k>/track_id      str    [shape=(n_test_tracks,)]  the fold's test tracks
    /model<i>/fold<k>/track_label   int64  [shape=(n_test_tracks,)]  true labels (into ``labels``)
    /model<i>/fold<k>/track_proba   float32 [shape=(n_test_tracks, n_labels)]  track probabilities
    attrs: report (JSON; see :func:`genre_cli.cv.run`: data, folds, split method, level, and
           per model its per-fold results and their mean and standard deviation),
           provenance (JSON, of the features cross-validated)
    params: models (label, model, training settings), folds, cv_version (:data:`CV_VERSION`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from genre_cli import artifacts
from genre_cli.formats import provenance
from genre_cli.formats.provenance import Provenance

KIND = artifacts.register_kind("cv", schema=1, maker="genre cv")

#: Version of the report's content; part of the parameters so that older reports are redone.
CV_VERSION = 2  # 2: the std of one fold is null (was 0)


def write(f, report: dict[str, Any], arrays: dict[tuple[int, int], dict[str, np.ndarray]], *, prov: Provenance) -> None:
    """Write ``report`` and the track predictions (``arrays[(model index, fold)]``: ``track_id``,
    ``track_label``, ``track_proba``) into the open artifact ``f``."""
    str_dt = h5py.string_dtype("utf-8")
    for (i, k), arr in sorted(arrays.items()):
        g = f.require_group(f"model{i}").create_group(f"fold{k}")
        g.create_dataset("track_id", data=np.array([str(s) for s in arr["track_id"]], dtype=object), dtype=str_dt)
        g.create_dataset("track_label", data=np.asarray(arr["track_label"], dtype=np.int64))
        g.create_dataset("track_proba", data=np.asarray(arr["track_proba"], dtype=np.float32))
    f.attrs["report"] = json.dumps(report)
    provenance.write(f, prov)


def read(path: str | Path) -> dict[str, Any]:
    """The report stored in a cv artifact."""
    with artifacts.open_artifact(path, KIND.stage) as (f, _):
        return json.loads(f.attrs["report"])


def write_json(path: str | Path, report: dict[str, Any]) -> Path:
    """The ``.json`` copy beside the artifact at ``path``."""
    out = Path(path).with_suffix(".json")
    out.write_text(json.dumps(report, indent=2))
    return out
