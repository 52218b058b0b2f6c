"""Name → object registries (datasets, features, models).

Modelled on torchvision's ``register_model``: registering a name twice is a programming
error, asking for an unknown name is a :class:`~genre_cli.errors.UsageError` that lists
the valid names.

Examples
--------
>>> MODELS = Registry("model")
>>> @MODELS.register("logreg", inputs=("handcrafted",), source="Pun & Nazirkhanova 2020")
... def build_logreg(**cfg): ...
>>> MODELS.get("logreg") is build_logreg
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from genre_cli.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects with free-form metadata per entry."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` with metadata ``meta``.

        Raises
        ------
        ValueError
            If ``name`` is already registered.
        """

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def get(self, name: str) -> T:
        """Object registered as ``name``; :class:`UsageError` listing valid names if unknown."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise UsageError(f"unknown {self.kind} {name!r}; valid {self.kind}s: {valid}") from None

    def meta(self, name: str) -> dict[str, Any]:
        """Metadata given at registration (a copy)."""
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
