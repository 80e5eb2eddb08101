"""Tokenizers that data rules count or cut with (DialoGPT 300-token limit, gpt2 truncation, ...).

A builder option ``tokenizer`` is a mapping validated as a ``ModelSource``: ``{hub_id, revision}``
for real runs (the task YAML keeps the seed's tokenizer), or ``{path}`` for a local directory
saved with ``save_pretrained`` (tests pass a tiny word-level tokenizer built on the spot, so
nothing is downloaded).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any

from rlhf_core.config import ModelSource, project_root


def source_option(option: Any, *, name: str, builder: str) -> ModelSource:
    """A builder option naming a model or tokenizer, as a ``ModelSource``; a relative ``path`` is
    taken from the project root. A bad option fails naming the builder and the option."""
    if not isinstance(option, dict):
        raise ValueError(f"builder {builder!r}: option {name!r} must be a mapping, got {option!r}")
    try:
        src = ModelSource(**option)
    except (TypeError, ValueError) as err:
        raise ValueError(f"builder {builder!r}: option {name!r}: {err}") from None
    if src.path is not None and not Path(src.path).is_absolute():
        src = dataclasses.replace(src, path=str(project_root() / src.path))
    return src


@lru_cache(maxsize=8)
def _load(source: ModelSource):
    from rlhf_core.models.load import load_tokenizer as load_source_tokenizer

    return load_source_tokenizer(source)


def load_tokenizer(option: Any, *, builder: str):
    """A ``transformers`` tokenizer from a builder's ``tokenizer`` option.

    Args:
        option: ``{"hub_id": ..., "revision": ...}`` or ``{"path": ...}``.
        builder: The builder asking, named in errors.
    """
    return _load(source_option(option, name="tokenizer", builder=builder))


def token_count(tokenizer, text: str, *, special_tokens: bool = False) -> int:
    """Number of tokens of ``text`` (without special tokens unless asked)."""
    return len(tokenizer(text, add_special_tokens=special_tokens)["input_ids"])
