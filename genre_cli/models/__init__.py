"""The model zoo: a registry of builders for sklearn pipelines and torch modules.

Each model is ONE builder function registered with ``@MODELS.register(name, kind=..., inputs=...,
source=..., description=..., features=..., train=...)``; variants (kernel, depth, k, ...) are
builder parameters. Registry metadata:

``kind``
    ``"torch"`` (a :class:`~genre_cli.models.base.GenreModule` returning logits) or ``"sklearn"``
    (a :class:`sklearn.pipeline.Pipeline` whose first step is a ``StandardScaler``).
``inputs``
    Tuple of input *slots*. A slot is a wildcard — ``"spectrogram"`` (any time x feature matrix)
    or ``"vector"`` (any 1-D feature), filled by the features of that slot in the feature table
    (:func:`genre_cli.features.slot_choices`) — or a concrete feature name. ``input_shapes`` maps the
    slot to the per-sample shape: ``(n_frames, n_bins)`` for spectrograms, ``(d,)`` for vectors.
    Torch modules are called with keyword arguments named by slot; sklearn pipelines get one
    ``(batch, features)`` array (the caller flattens / concatenates).
``features``
    The concrete feature the paper used for each slot (a suggestion for the trainer).
``train``
    Training hyper-parameters the paper states (or we chose, see the builder docstring), e.g.
    ``weight_decay`` for ``mlp``; the trainer may use them as defaults.

:func:`model_info` reports these plus ``config`` — the builder's keyword defaults.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from genre_cli.errors import UsageError
from genre_cli.features.kind import SLOTS
from genre_cli.registry import Registry

MODELS: Registry = Registry("model")

#: Modules that register models; imported on first use of :func:`list_models` & co.
_MODULES = ("sklearn_models", "mlp", "cnn", "resnet", "recurrent", "dupconv", "musicnn")


def _load_all() -> None:
    for mod in _MODULES:
        importlib.import_module(f"genre_cli.models.{mod}")


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _load_all()
    return MODELS.names()


def get_model(name: str):
    """The builder registered as ``name`` (UsageError listing valid names if unknown)."""
    _load_all()
    return MODELS.get(name)


def _config_defaults(builder) -> dict[str, Any]:
    out = {}
    for pname, p in inspect.signature(builder).parameters.items():
        if pname in ("n_classes", "input_shapes") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[pname] = None if p.default is inspect.Parameter.empty else p.default
    return out


def model_info(name: str) -> dict[str, Any]:
    """``{name, kind, inputs, source, description, features, train, recipe, config}`` for model ``name``.

    ``config`` holds the builder's keyword defaults (``build_model(name, **config)`` overrides);
    ``train`` the paper's training hyper-parameters (e.g. ``weight_decay``); ``recipe`` the
    model's adjustments to the default training recipe (:mod:`genre_cli.training.recipe`), usually none.
    """
    builder = get_model(name)
    meta = MODELS.meta(name)
    return {
        "name": name,
        "kind": meta.get("kind"),
        "inputs": tuple(meta.get("inputs", ())),
        "source": meta.get("source", ""),
        "description": meta.get("description", ""),
        "features": dict(meta.get("features", {})),
        "train": dict(meta.get("train", {})),
        "recipe": dict(meta.get("recipe", {})),
        "config": _config_defaults(builder),
    }


def _check_shapes(name: str, slots: tuple[str, ...], input_shapes: dict) -> dict[str, tuple[int, ...]]:
    if not isinstance(input_shapes, dict):
        raise UsageError(f"model {name!r}: input_shapes must be a dict slot -> shape, got {type(input_shapes).__name__}")
    missing = [s for s in slots if s not in input_shapes]
    if missing:
        raise UsageError(f"model {name!r} needs input shapes for slots {list(slots)}; missing {missing}")
    out = {}
    for slot in slots:
        try:
            shape = tuple(int(d) for d in input_shapes[slot])
        except (TypeError, ValueError):
            raise UsageError(f"model {name!r}: shape of slot {slot!r} must be a tuple of ints, got {input_shapes[slot]!r}") from None
        if not shape or any(d < 1 for d in shape):
            raise UsageError(f"model {name!r}: shape of slot {slot!r} must be non-empty and positive, got {shape}")
        if slot in SLOTS and len(shape) != SLOTS[slot]:
            want = "(n_frames, n_bins)" if SLOTS[slot] == 2 else "(d,)"
            raise UsageError(f"model {name!r}: slot {slot!r} needs shape {want}, got {shape}")
        out[slot] = shape
    return out


def build_model(name: str, *, n_classes: int, input_shapes: dict[str, tuple[int, ...]], **cfg):
    """Build model ``name``: a torch module (logits out) or an unfitted sklearn pipeline.

    Raises :class:`UsageError` for an unknown name (listing the valid ones), unknown config keys
    (listing the valid ones), bad values, or input shapes that do not fit the model's slots.
    """
    builder = get_model(name)
    meta = MODELS.meta(name)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise UsageError(f"model {name!r}: n_classes must be an integer >= 2, got {n_classes!r}")
    params = inspect.signature(builder).parameters
    valid = [p for p in params if p not in ("n_classes", "input_shapes")]
    unknown = sorted(set(cfg) - set(valid))
    if unknown:
        raise UsageError(f"model {name!r} has no option(s) {unknown}; valid options: {', '.join(valid) or '(none)'}")
    kwargs = dict(cfg)
    if "n_classes" in params:
        kwargs["n_classes"] = n_classes
    if "input_shapes" in params:
        kwargs["input_shapes"] = _check_shapes(name, tuple(meta.get("inputs", ())), input_shapes)
    try:
        return builder(**kwargs)
    except UsageError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(f"model {name!r}: invalid configuration {cfg!r}: {exc}") from exc


__all__ = ["MODELS", "build_model", "get_model", "list_models", "model_info"]
