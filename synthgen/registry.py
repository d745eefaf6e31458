"""Small explicit registries: a short name maps to one factory; duplicates are errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from synthgen.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps short names ("bulge", "capped_bottle") to registered objects.

    Args:
        kind: what the registry holds, used in error messages ("defect type").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers an object under `name`; raises on a duplicate name."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """The object registered as `name`; a ConfigError lists the known names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"{name!r} is not a {self.kind}; known: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
