"""The pretrained-weights artifact (stage ``pretrained``): a converted musicnn tagger.

Written by ``genre fetch model musicnn`` (:func:`genre_cli.pretrained.convert.convert`) from
the TensorFlow checkpoints of the ``musicnn`` 0.1.0 wheel; the package ships
``genre_cli/data/pretrained/musicnn-{msd,mtt}.h5`` with the wheel's ISC licence beside them.

Layout (schema 1)::

    /weights          the state dict, one float32 dataset per tensor
                      (:func:`genre_cli.models.persist.save_torch`: no pickle)
    attrs: the usual artifact metadata (stage, schema_version, params, fingerprint, versions,
           created, complete) and
           name ("musicnn-msd"), model ("musicnn"), variant ("msd"),
           output ("sigmoid": independent tag likelihoods), labels (JSON tags),
           model_config (JSON Musicnn kwargs), input_shapes ({"spectrogram": [187, 96]}),
           preprocessing (JSON, genre_cli.pretrained.preprocess.PARAMS),
           dataset, source (JSON: wheel, sha256, checkpoint, requirement, index),
           license ("ISC"), license_text, copyright, citation, n_values
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py

from genre_cli import artifacts
from genre_cli.errors import ArtifactError

KIND = artifacts.register_kind("pretrained", schema=1, maker="genre fetch model musicnn")

_TEXT = ("name", "model", "variant", "output", "dataset", "license", "license_text", "copyright", "citation")
_JSON = ("labels", "model_config", "input_shapes", "preprocessing", "source")


def write(path: str | Path, *, params: dict[str, Any], attrs: dict[str, Any], save_weights: Callable[[h5py.Group], None]) -> Path:
    """Write a weight file atomically: ``attrs`` (the keys of the layout above) on the root,
    ``save_weights(group)`` fills ``/weights``."""
    path = Path(path)
    missing = sorted(set(_TEXT + _JSON + ("n_values",)) - set(attrs))
    if missing:
        raise ValueError(f"pretrained weight file attributes missing: {', '.join(missing)}")
    with artifacts.write_artifact(path, stage=KIND.stage, params=params, attrs=attrs) as f:
        save_weights(f.create_group("weights"))
    return path


def read_info(path: str | Path) -> dict[str, Any]:
    """The description of a weight file (root attributes, JSON decoded), without the weights.

    Returns
    -------
    dict
        The layout's attributes plus ``fingerprint``.

    Raises
    ------
    MissingInputError, ArtifactError
        Missing file, not a complete ``pretrained`` artifact, or attributes missing.
    """
    path = Path(path)
    with artifacts.open_artifact(path, KIND.stage) as (f, meta):
        info: dict[str, Any] = {key: str(f.attrs[key]) for key in _TEXT}
        for key in _JSON:
            info[key] = json.loads(str(f.attrs[key]))
        info["n_values"] = int(f.attrs["n_values"])
        info["fingerprint"] = meta.fingerprint
    if info["model"] != "musicnn" or info["output"] not in ("sigmoid", "softmax"):
        raise ArtifactError(f"{path}: not a musicnn weight file (model {info['model']!r}, output {info['output']!r})")
    if not isinstance(info["labels"], list) or not info["labels"]:
        raise ArtifactError(f"{path}: attribute 'labels' must be a non-empty list")
    return info


def load_weights(path: str | Path, load: Callable[[h5py.Group], None]) -> None:
    """Call ``load(group)`` on the ``/weights`` group of a complete weight file."""
    with artifacts.open_artifact(Path(path), KIND.stage) as (f, _meta):
        load(f["weights"])
