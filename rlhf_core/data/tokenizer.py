"""Tokenizers that data rules count or cut with (DialoGPT 300-token limit, gpt2 truncation, ...).

A builder option ``tokenizer`` is a mapping validated as a ``ModelSource``: ``{hub_id, revision}``
for real runs (the task YAML keeps the seed's tokenizer), or ``{path}`` for a local directory
saved with ``save_pretrained`` (tests pass a tiny word-level tokenizer built on the spot, so
nothing is downloaded).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from rlhf_core.config import PROJECT_ROOT, ModelSource


def load_tokenizer(option: Any, *, builder: str):
    """A ``transformers`` tokenizer from a builder's ``tokenizer`` option.

    Args:
        option: ``{"hub_id": ..., "revision": ...}`` or ``{"path": ...}``.
        builder: The builder asking, named in errors.
    """
    if not isinstance(option, dict):
        raise ValueError(f"builder {builder!r}: option 'tokenizer' must be a mapping, got {option!r}")
    try:
        src = ModelSource(**option)
    except (TypeError, ValueError) as err:
        raise ValueError(f"builder {builder!r}: option 'tokenizer': {err}") from None
    if src.path is not None:
        path = Path(src.path)
        return _load(str(path if path.is_absolute() else PROJECT_ROOT / path), None)
    return _load(src.hub_id, src.revision)


@lru_cache(maxsize=8)
def _load(name_or_path: str, revision: str | None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, revision=revision)


def token_count(tokenizer, text: str, *, special_tokens: bool = False) -> int:
    """Number of tokens of ``text`` (without special tokens unless asked)."""
    return len(tokenizer(text, add_special_tokens=special_tokens)["input_ids"])
