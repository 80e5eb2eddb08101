"""Import every module of a package, so the plug-ins in it (loaders, scorers) register themselves.

A registry that calls this sets ``DISCOVERS = "<package>"`` at module level: ``rlhf_core.codehash``
reads it to include every plug-in in the code version of the stages that use the registry.
"""
from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")
