"""The data sections: the tokenizer, raw sources and the datasets built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlhf_core.config.models import ModelSource


@dataclass(frozen=True)
class TokenizerConfig:
    """A byte-level BPE trained on the task corpus, or a hub/local tokenizer."""

    vocab_size: int = 1000
    min_frequency: int = 2
    source: ModelSource | None = None  # None: train on the task corpus


@dataclass(frozen=True)
class SourceConfig:
    """A raw data source: a pinned hub dataset, or a local copy (``path`` wins when both are set).

    ``loader`` names a function in ``rlhf_core.data.loaders``; ``files`` maps the loader's logical
    file names to paths inside the source; ``options`` are the loader's own keyword settings.
    """

    loader: str
    hub_id: str | None = None
    revision: str | None = None
    path: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    """A table derived from sources or other datasets by a named builder (cleaning, RM files)."""

    builder: str
    inputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)
