"""Import every module of a package, so the plug-ins in it (loaders, scorers) register themselves.

A registry that calls this sets ``DISCOVERS = "<package>"`` at module level: ``rlhf_core.codehash``
reads it to include every plug-in in the code version of the stages that use the registry.
``declared_names`` lists the names a package registers without importing it, for config checks.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pkgutil
from pathlib import Path


def import_submodules(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")


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
