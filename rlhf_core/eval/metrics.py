"""Evaluation metrics (docs/sources.md §7.2)."""
from __future__ import annotations


def distinct_n(texts: list[str], n: int) -> float:
    """Corpus-level distinct-n: unique n-grams / all n-grams over lowercased whitespace tokens."""
    grams = [tuple(words[i : i + n]) for t in texts for words in [t.lower().split()] for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
