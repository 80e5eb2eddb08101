"""Every pipeline stage without Dagster, one module per asset group: data, models, annotation, rl,
evaluation. Each stage is one declaration (``base``); its asset in ``assets/`` is a call."""

from __future__ import annotations

import importlib
import pkgutil


def all_stages() -> dict:
    """Every stage of the package's modules by name (the stage command's choices; the key tests walk them)."""
    from rlhf_core.stages.base import Stage

    found = {}
    for info in pkgutil.iter_modules(__path__):
        for value in vars(importlib.import_module(f"{__name__}.{info.name}")).values():
            if isinstance(value, Stage):
                found[value.name] = value
    return found
