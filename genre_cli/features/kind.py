"""The feature table: one registered :class:`FeatureKind` per feature the toolkit knows.

A feature kind says everything the rest of the toolkit needs about one feature: its name,
the model input slot it can fill, its options (with their ``genre featurize`` flags), whether
a config selects it, its per-segment shape and column names, how to compute it from a batch
of segments, and what ``genre run`` selects when a model's paper asks for it. ``featurize``,
``train`` (input slots), ``predict``, ``inference`` (hints), :class:`FeatureConfig` and the
command line all read this table; nothing else lists features.

Adding a feature kind is one new module in :mod:`genre_cli.features.kinds` (found and imported
automatically) that registers its kind with :func:`register` -- and, when it needs its own
intermediate representation (another sample rate, a network's embeddings), a
:class:`Frontend` with :func:`register_frontend`.

Slots
-----
``spectrogram``: a ``(n_frames, n_bins)`` matrix per segment; ``vector``: a ``(d,)`` vector.
A model input names a slot (any feature of that slot fills it, in :attr:`FeatureKind.order`)
or a feature.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genre_cli.options import Option
from genre_cli.registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from genre_cli.features.config import FeatureConfig

#: Wildcard model input slots and the rank of their per-segment arrays.
SLOTS: dict[str, int] = {"spectrogram": 2, "vector": 1}


@dataclass(frozen=True)
class FeatureKind:
    """One feature: what it is, how it is configured, shaped and computed.

    Attributes
    ----------
    name : str
        Output name (the dataset ``/features/<name>`` of a features artifact).
    slot : {"spectrogram", "vector"}
        The wildcard model input it can fill.
    order : int
        Position in :meth:`FeatureConfig.names` and preference within its slot (lower first).
    options : tuple of Option
        Its own :class:`FeatureConfig` options (declare new ones with ``stored=False``:
        fingerprints of existing features stay the same).
    enabled : callable(cfg) -> bool
        Whether ``cfg`` selects it.
    shape : callable(cfg, n_samples) -> tuple of int
        Per-segment output shape for segments of ``n_samples`` (at ``cfg.sr``).
    compute : callable(frontend, cfg, out) or None
        Fills ``out`` [shape=(n, *shape), float32] from a chunk's :class:`Frontend` object;
        ``None`` for features that are imported, not computed (``table``).
    frontend : str
        Name of the registered :class:`Frontend` it is computed from.
    columns : callable(cfg) -> list of str, or None
        Column names of a vector feature.
    check : callable(cfg) or None
        Rules across options (raise :class:`~genre_cli.errors.UsageError`).
    check_length : callable(cfg, n_samples, n_frames) or None
        Rules on the segment length (raise ``UsageError``).
    suggested : dict
        Option values that select it with its usual settings: what ``genre run`` adds when a
        model's paper asks for this feature, and the hint ``genre featurize --mel 128``.
    hint : str
        How to make it, when not from ``suggested`` (``--table CSV``).
    slug : callable(cfg) -> str, or None
        Its part of a features file name (default: name, plus an integer option's value).
    precise : bool
        Needs the float64 FFT of the ``stft`` frontend (vector statistics).
    depends_on : tuple of str or None
        The :class:`FeatureConfig` options its numbers depend on (shared STFT options, its own,
        another kind's): two configs that agree on these give the same values for the same
        audio. ``None``: every shared option and its own. ``evaluate`` refuses a model on
        features that differ in one of them (:func:`value_options`); ``tests/test_features.py``
        checks each declaration by computing the feature with every option changed.
    """

    name: str
    slot: str
    order: int
    options: tuple[Option, ...] = ()
    enabled: Callable[[FeatureConfig], bool] = lambda cfg: False
    shape: Callable[[FeatureConfig, int], tuple[int, ...]] | None = None
    compute: Callable[[Any, FeatureConfig, np.ndarray], None] | None = None
    frontend: str = "stft"
    columns: Callable[[FeatureConfig], list[str]] | None = None
    check: Callable[[FeatureConfig], None] | None = None
    check_length: Callable[[FeatureConfig, int, int], None] | None = None
    suggested: dict[str, Any] = field(default_factory=dict)
    hint: str = ""
    slug: Callable[[FeatureConfig], str] | None = None
    precise: bool = False
    description: str = ""
    depends_on: tuple[str, ...] | None = None

    def make_hint(self) -> str:
        """The ``genre featurize`` flags that produce it (``--mel 128``)."""
        if self.hint:
            return self.hint
        return " ".join(o.hint(self.suggested[o.name]) for o in self.options if o.name in self.suggested)

    def slug_part(self, cfg: FeatureConfig) -> str:
        if self.slug is not None:
            return self.slug(cfg)
        value = getattr(cfg, self.options[0].name) if self.options else None
        return f"{self.name}{value}" if isinstance(value, int) and not isinstance(value, bool) and value else self.name


@dataclass(frozen=True)
class Frontend:
    """An intermediate representation shared by the kinds computed from it (one per chunk).

    ``make(y, cfg, kinds, workers)`` builds the per-chunk object the kinds' ``compute`` read
    (the ``stft`` frontend: one STFT, lazily its power, mel, MFCC ...); ``check_length(cfg,
    n_samples)`` raises ``UsageError`` for segments too short and returns the number of
    frames it produces (or 0). A frontend may resample ``y`` (given at ``cfg.sr``) to its
    own rate.
    """

    name: str
    make: Callable[..., Any]
    check_length: Callable[[FeatureConfig, int], int] = lambda cfg, n: 0


FEATURES: Registry[FeatureKind] = Registry("feature")
FRONTENDS: Registry[Frontend] = Registry("frontend")


def register(kind: FeatureKind) -> FeatureKind:
    """Add ``kind`` to the feature table (a duplicate name is a programming error)."""
    if kind.slot not in SLOTS:
        raise ValueError(f"feature {kind.name!r}: slot must be one of {', '.join(SLOTS)}, got {kind.slot!r}")
    return FEATURES.register(kind.name)(kind)


def register_frontend(frontend: Frontend) -> Frontend:
    return FRONTENDS.register(frontend.name)(frontend)


_loaded = False


def load() -> None:
    """Import every module of :mod:`genre_cli.features.kinds` (each registers its kinds)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from genre_cli.features import kinds as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{info.name}")


def kinds() -> list[FeatureKind]:
    """Every registered kind, in :attr:`FeatureKind.order`."""
    load()
    return sorted((FEATURES.get(n) for n in FEATURES.names()), key=lambda k: (k.order, k.name))


def get(name: str) -> FeatureKind:
    """The kind registered as ``name`` (``UsageError`` listing the valid names if unknown)."""
    load()
    return FEATURES.get(name)


def slot_choices(slot: str) -> tuple[str, ...]:
    """The features that can fill ``slot``, in order of preference; a feature name fills itself."""
    if slot not in SLOTS:
        return (slot,)
    return tuple(k.name for k in kinds() if k.slot == slot)


def value_options(name: str) -> tuple[str, ...]:
    """The :class:`FeatureConfig` options the values of feature ``name`` depend on
    (:attr:`FeatureKind.depends_on`); ``()`` for a feature this table does not know."""
    load()
    if name not in FEATURES:
        return ()
    k = FEATURES.get(name)
    if k.depends_on is not None:
        return k.depends_on
    from genre_cli.features.config import SHARED_OPTIONS

    return tuple(o.name for o in SHARED_OPTIONS) + tuple(o.name for o in k.options)


def make_hint(name: str) -> str:
    """The ``genre featurize`` flags that make feature ``name`` (``name`` itself if unknown)."""
    load()
    return FEATURES.get(name).make_hint() if name in FEATURES else name
