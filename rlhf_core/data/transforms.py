"""Small helpers every builder uses: picking inputs, reading options, naming splits."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rlhf_core.config import DatasetConfig


def one_input(inputs: dict[str, pd.DataFrame], spec: DatasetConfig) -> pd.DataFrame:
    """The single upstream table of a builder that takes exactly one input."""
    if len(inputs) != 1:
        raise ValueError(f"builder {spec.builder!r} takes exactly one input, got {sorted(inputs)}")
    return next(iter(inputs.values()))


def option(spec: DatasetConfig, name: str, default: Any = ..., *, choices: tuple | None = None) -> Any:
    """A builder option; without a default it is required. ``choices`` limits its values."""
    if name not in spec.options:
        if default is ...:
            raise ValueError(f"builder {spec.builder!r}: option {name!r} is required")
        return default
    value = spec.options[name]
    if choices is not None and value not in choices:
        raise ValueError(f"builder {spec.builder!r}: option {name!r} must be one of {list(choices)}, got {value!r}")
    return value


def check_options(spec: DatasetConfig, allowed: set[str]) -> None:
    """Unknown builder options are errors, like unknown config keys."""
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        raise ValueError(f"builder {spec.builder!r}: unknown option(s) {unknown}; allowed: {sorted(allowed)}")


def normalize_ws(text: str) -> str:
    """Collapse every whitespace run to one space and strip."""
    return " ".join(text.split())
