"""Plug-ins by name (loaders, builders, scorers, policy algorithms), so task YAMLs name them.

    LOADERS = Registry("loader", "rlhf_core.data.loaders")

    @LOADERS.register("hh_rlhf")
    def load_hh(source, task): ...

    LOADERS.get("hh_rlhf")   # imports every module of the package first: each registers what it defines

A stage keys on the code of the entries its task's config names (``Stage(uses=...)``), each hashed
alone (``rlhf_core.codehash``), never on the whole registry: the lookup is by name at run time, so
the hasher does not follow it, and an edit to one scorer re-keys only the partitions that use it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name; ``package``: where they are defined (imported on first lookup)."""

    def __init__(self, kind: str, package: str | None = None):
        self.kind, self.package = kind, package
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator: ``@registry.register("name")`` on the entry's definition."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        self._discover()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def _discover(self) -> None:
        if self.package is not None:  # importing a module twice is a dictionary lookup
            module = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(module.__path__):
                importlib.import_module(f"{self.package}.{info.name}")


@functools.cache
def declared_names(package: str, register: str) -> frozenset[str]:
    """The names a package's modules register through ``register("name")`` (as a decorator or a
    call), read from their source: importing every scorer would load torch and transformers, seconds
    a config check should not cost. A test holds this equal to the registries after import."""
    names = set()
    for folder in importlib.util.find_spec(package).submodule_search_locations:
        for path in sorted(Path(folder).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                func = getattr(node, "func", None)
                called = getattr(func, "id", None) or getattr(func, "attr", None)
                if called == register and node.args and isinstance(node.args[0], ast.Constant):
                    names.add(node.args[0].value)
    return frozenset(names)
