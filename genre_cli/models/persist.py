"""Model persistence inside HDF5 groups — no pickle anywhere.

Torch (``save_torch`` / ``load_torch_state`` / ``load_torch``)
    Every ``state_dict`` entry is one dataset holding the plain array (names escaped: ``%`` ->
    ``%25``, ``/`` -> ``%2F``; torch keys use dots, so they normally stay as they are). Per dataset
    attributes ``torch_dtype`` and ``shape``; group attributes ``format = "torch-state-dict"``,
    ``format_version`` and ``keys`` (JSON list, the state-dict order). dtypes are preserved
    (bfloat16, which numpy lacks, is stored as its int16 bit pattern). Loading reads numeric
    arrays only and builds tensors with ``torch.from_numpy`` — never ``torch.load``.

sklearn (``save_sklearn`` / ``load_sklearn``)
    The fitted pipeline is serialised with ``skops.io`` (a zip of JSON + ``.npy`` arrays; no
    pickle) into a ``uint8`` dataset ``skops``. Loading first lists the archive's types that
    skops does not trust by default and refuses any not in :data:`TRUSTED_TYPES` — an explicit
    list of the types our zoo needs beyond skops' own safe list (random-forest ``Tree``, knn's
    ``KDTree`` / ``BallTree`` and distance metrics, svm's probability calibrators). The
    loaded object must be an sklearn ``Pipeline``.

Any malformed group (wrong format tag, missing or extra datasets, wrong dtypes / shapes, bytes
that are not a skops archive, e.g. a pickle payload) raises :class:`~genre_cli.errors.ArtifactError`.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from genre_cli.errors import ArtifactError

TORCH_FORMAT = "torch-state-dict"
SKLEARN_FORMAT = "sklearn-skops"
FORMAT_VERSION = 1

#: Types beyond skops' default-trusted set that :func:`load_sklearn` accepts: the Cython
#: internals of our zoo's fitted estimators (random-forest trees; knn's search trees and
#: distance metrics for the metrics ``knn`` offers; svm's calibrators). Found by fitting every
#: zoo config.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.calibration._CalibratedClassifier",  # svm(probability=True)
    "sklearn.calibration._SigmoidCalibration",
)

# torch dtype name -> numpy dtype it is stored as
_NP_DTYPES = {
    "float64": "float64",
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "int16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "complex64": "complex64",
    "complex128": "complex128",
}


def _escape(key: str) -> str:
    return key.replace("%", "%25").replace("/", "%2F")


def _where(group: h5py.Group) -> str:
    try:
        return f"{group.file.filename}:{group.name}"
    except Exception:  # noqa: BLE001 — closed file etc.
        return "<group>"


def _attr_str(group: h5py.HLObject, name: str, where: str) -> str:
    if name not in group.attrs:
        raise ArtifactError(f"{where}: missing attribute {name!r}")
    v = group.attrs[name]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        raise ArtifactError(f"{where}: attribute {name!r} is not a string")
    return v


def _check_format(group: h5py.Group, fmt: str) -> str:
    if not isinstance(group, h5py.Group):
        raise ArtifactError(f"expected an HDF5 group holding a {fmt} model, got {type(group).__name__}")
    where = _where(group)
    got = _attr_str(group, "format", where)
    if got != fmt:
        raise ArtifactError(f"{where}: holds {got!r}, expected {fmt!r}")
    version = group.attrs.get("format_version")
    if not isinstance(version, (int, np.integer)) or int(version) > FORMAT_VERSION:
        raise ArtifactError(f"{where}: unsupported {fmt} format_version {version!r} (this version reads <= {FORMAT_VERSION})")
    return where


# -- torch -----------------------------------------------------------------------------------
def save_torch(group: h5py.Group, module) -> None:
    """Write ``module.state_dict()`` into ``group`` (one dataset per tensor, dtype preserved)."""
    import torch

    keys = []
    for key, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        name = str(t.dtype).removeprefix("torch.")
        if name not in _NP_DTYPES:
            raise TypeError(f"cannot store tensor {key!r} of dtype {t.dtype}")
        arr = t.view(torch.int16).numpy() if name == "bfloat16" else t.numpy()
        ds = group.create_dataset(_escape(key), data=arr)
        ds.attrs["torch_dtype"] = name
        ds.attrs["shape"] = np.asarray(t.shape, dtype=np.int64)
        keys.append(key)
    group.attrs["format"] = TORCH_FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["keys"] = json.dumps(keys)
    group.attrs["module_class"] = type(module).__name__


def load_torch_state(group: h5py.Group) -> dict[str, Any]:
    """Read a state dict written by :func:`save_torch`: ``{key: torch.Tensor}``.

    Raises :class:`ArtifactError` when the group is not such a state dict or is malformed.
    """
    import torch

    where = _check_format(group, TORCH_FORMAT)
    try:
        keys = json.loads(_attr_str(group, "keys", where))
    except json.JSONDecodeError:
        raise ArtifactError(f"{where}: attribute 'keys' is not valid JSON") from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArtifactError(f"{where}: attribute 'keys' must be a JSON list of strings")
    expected = {_escape(k) for k in keys}
    extra = sorted(set(group.keys()) - expected)
    if extra:
        raise ArtifactError(f"{where}: unexpected entries {extra[:5]} not listed in 'keys'")
    state: dict[str, torch.Tensor] = {}
    for key in keys:
        obj = group.get(_escape(key))
        if obj is None:
            raise ArtifactError(f"{where}: missing dataset for tensor {key!r}")
        if not isinstance(obj, h5py.Dataset):
            raise ArtifactError(f"{where}: {key!r} is not a dataset")
        tname = _attr_str(obj, "torch_dtype", f"{where}/{key}")
        if tname not in _NP_DTYPES:
            raise ArtifactError(f"{where}: tensor {key!r} has unsupported dtype {tname!r}")
        if obj.dtype != np.dtype(_NP_DTYPES[tname]):
            raise ArtifactError(f"{where}: tensor {key!r} stored as {obj.dtype}, expected {_NP_DTYPES[tname]} for {tname}")
        try:
            shape = tuple(int(d) for d in np.asarray(obj.attrs["shape"]).ravel())
        except (KeyError, TypeError, ValueError):
            shape = None
        if shape != obj.shape:
            raise ArtifactError(f"{where}: tensor {key!r} has shape {obj.shape}, recorded shape {obj.attrs.get('shape')!r}")
        arr = np.array(obj[()], dtype=obj.dtype, copy=True).reshape(obj.shape)
        t = torch.from_numpy(arr)
        state[key] = t.view(torch.bfloat16) if tname == "bfloat16" else t
    return state


def load_torch(group: h5py.Group, module):
    """Load a state dict saved by :func:`save_torch` into ``module`` (strict) and return it.

    Missing / unexpected keys or shape mismatches with ``module`` raise :class:`ArtifactError`.
    """
    where = _where(group)
    state = load_torch_state(group)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ArtifactError(f"{where}: state dict does not fit {type(module).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for k, t in state.items():
        if tuple(t.shape) != tuple(own[k].shape):
            raise ArtifactError(f"{where}: tensor {k!r} has shape {tuple(t.shape)}, model expects {tuple(own[k].shape)}")
        if t.dtype != own[k].dtype:
            raise ArtifactError(f"{where}: tensor {k!r} has dtype {t.dtype}, model expects {own[k].dtype}")
    module.load_state_dict(state, strict=True)
    return module


# -- sklearn ---------------------------------------------------------------------------------
def save_sklearn(group: h5py.Group, pipeline) -> None:
    """Serialise a (fitted) sklearn pipeline with ``skops.io`` into ``group["skops"]`` (uint8)."""
    import sklearn
    import skops
    import skops.io as sio

    data = sio.dumps(pipeline)
    group.create_dataset("skops", data=np.frombuffer(data, dtype=np.uint8))
    group.attrs["format"] = SKLEARN_FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["skops_version"] = skops.__version__
    group.attrs["sklearn_version"] = sklearn.__version__
    group.attrs["estimator"] = type(pipeline).__name__


def load_sklearn(group: h5py.Group):
    """Load a pipeline written by :func:`save_sklearn`; only trusted types are instantiated."""
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    where = _check_format(group, SKLEARN_FORMAT)
    ds = group.get("skops")
    if ds is None:
        raise ArtifactError(f"{where}: missing dataset 'skops'")
    if not isinstance(ds, h5py.Dataset) or ds.dtype != np.uint8 or ds.ndim != 1:
        raise ArtifactError(
            f"{where}: 'skops' must be a 1-D uint8 dataset, got {getattr(ds, 'dtype', type(ds).__name__)} {getattr(ds, 'shape', '')}"
        )
    data = ds[()].tobytes()
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 — not a zip / not a skops schema
        raise ArtifactError(f"{where}: 'skops' is not a valid skops archive ({type(exc).__name__}: {exc})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactError(f"{where}: refusing to load untrusted types {refused}")
    try:
        obj = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # noqa: BLE001
        raise ArtifactError(f"{where}: cannot load skops archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, Pipeline):
        raise ArtifactError(f"{where}: expected an sklearn Pipeline, got {type(obj).__name__}")
    return obj


__all__ = ["TRUSTED_TYPES", "load_sklearn", "load_torch", "load_torch_state", "save_sklearn", "save_torch"]
