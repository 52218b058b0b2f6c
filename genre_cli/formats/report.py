"""The evaluation report artifact (stage ``evaluate``), with a JSON copy beside it.

Layout (schema 1)::

    /model<i>/segment_confusion, track_confusion   int64 confusion matrices (true x predicted)
    /model<i>/segment_proba, segment_label, segment_track, track_id, track_proba, track_label
                                                     the predictions the metrics come from
    attrs: report (JSON list, one report per model; see :func:`genre_cli.evaluate.evaluate_model`),
           model<i> group attr ``model`` (its path), provenance (JSON, of the features evaluated)
    params: split, aggregate, allow_leakage, report_version (:data:`REPORT_VERSION`)
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

KIND = artifacts.register_kind("evaluate", schema=1, maker="genre evaluate")

#: Version of the report's content; part of evaluate's parameters so that older reports are
#: redone rather than shown. 4: papers cited by name in ``aggregate_note``; ``split_method`` of
#: features imported from a table. 5: leakage matched by label and track name across id schemes
#: (``leakage.renamed``, ``name_tracks``); features computed with other parameters refused.
#: 6: ``labels_untrained`` (evaluated tracks whose label the model saw no training track of).
REPORT_VERSION = 6


def write(f, reports: list[dict[str, Any]], arrays: list[dict[str, np.ndarray]], *, prov: Provenance) -> None:
    """Write the reports (one per model) and their prediction arrays into the open artifact ``f``."""
    str_dt = h5py.string_dtype("utf-8")
    for i, (rep, arr) in enumerate(zip(reports, arrays)):
        g = f.create_group(f"model{i}")
        g.attrs["model"] = rep["model"]
        for level in ("segment", "track"):
            g.create_dataset(f"{level}_confusion", data=np.array(rep[level]["confusion"], dtype=np.int64))
        for k, v in arr.items():
            if v.dtype == object:
                g.create_dataset(k, data=np.array([str(s) for s in v], dtype=object), dtype=str_dt)
            else:
                g.create_dataset(k, data=v, compression="gzip" if v.size > 1024 else None)
    f.attrs["report"] = json.dumps(reports)
    provenance.write(f, prov)


def read(path: str | Path) -> list[dict[str, Any]]:
    """The reports stored in an evaluate artifact."""
    with artifacts.open_artifact(path, KIND.stage) as (f, _):
        return json.loads(f.attrs["report"])


def write_json(path: str | Path, reports: list[dict[str, Any]]) -> Path:
    """The ``.json`` copy beside the artifact at ``path``."""
    out = Path(path).with_suffix(".json")
    out.write_text(json.dumps(reports, indent=2))
    return out
