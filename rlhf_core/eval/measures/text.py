"""Metrics of the text alone: distinct-n, response length, Grusky extractive fragments (docs/sources.md §7.2)."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np

from rlhf_core.eval.registry import EvalGroup, register


@register("distinct")
class Distinct:
    """Variety of wording: distinct n-grams / all n-grams of the samples, reported as ``<name>-<n>`` for each n.

    ``per: corpus`` ([LoL] §7.2): unique n-grams / all n-grams over every response, lowercased whitespace words.
    ``per: prompt`` (Quark's ``distinctness``, which [FG]'s detox numbers follow): per prompt over its samples,
    unique n-grams / all words of those samples (words split on single spaces, case kept), then the mean over
    prompts. ``lowercase`` and ``denominator`` override either convention.
    """

    version = "1"

    def __init__(
        self,
        n: list[int] = (1, 2, 3),
        per: Literal["corpus", "prompt"] = "corpus",
        lowercase: bool | None = None,
        denominator: Literal["ngrams", "words"] | None = None,
    ):
        if per not in ("corpus", "prompt"):
            raise ValueError(f"distinct: per must be corpus or prompt, got {per!r}")
        self.n, self.per = list(n), per
        self.lowercase = (per == "corpus") if lowercase is None else lowercase
        self.denominator = denominator or ("ngrams" if per == "corpus" else "words")

    def _words(self, text: str) -> list[str]:
        text = text.lower() if self.lowercase else text
        return text.split() if self.per == "corpus" else text.split(" ")

    def _ratio(self, texts: list[str], n: int) -> float:
        words = [self._words(t) for t in texts]
        grams = [tuple(w[i : i + n]) for w in words for i in range(len(w) - n + 1)]
        total = len(grams) if self.denominator == "ngrams" else sum(len(w) for w in words)
        return len(set(grams)) / total if total else 0.0  # no n-gram at all: nothing distinct

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        texts = group.column("completion", "distinct").tolist()
        if self.per == "corpus":
            return {f"-{n}": self._ratio(texts, n) for n in self.n}
        by_prompt = group.rows.groupby("prompt", sort=False)["completion"].apply(list)
        return {f"-{n}": float(np.nanmean([self._ratio(t, n) for t in by_prompt])) for n in self.n}


@register("length")
class Length:
    """Mean response length: whitespace ``words`` ([LoL] ``avg_response_len``) or generated ``tokens`` ([FG])."""

    version = "1"

    def __init__(self, unit: Literal["words", "tokens"] = "words"):
        if unit not in ("words", "tokens"):
            raise ValueError(f"length: unit must be words or tokens, got {unit!r}")
        self.unit = unit

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        if self.unit == "tokens":
            return {"": float(group.column("completion_tokens", "length").mean())}
        return {"": float(group.column("completion", "length").str.split().str.len().mean())}


def extractive_fragments(response: list[str], knowledge: list[str]) -> list[list[str]]:
    """Greedy shared fragments of ``response`` found in ``knowledge`` (Grusky et al.), with [LoL]'s quirk: a match
    replaces the best so far only when its length minus one exceeds the best's length, so a single word never
    counts and, once a fragment is found at a position, a match only one word longer does not replace it."""
    fragments, i = [], 0
    while i < len(response):
        best: list[str] = []
        j = 0
        while j < len(knowledge):
            if response[i] == knowledge[j]:
                i2, j2 = i, j
                while i2 < len(response) and j2 < len(knowledge) and response[i2] == knowledge[j2]:
                    i2, j2 = i2 + 1, j2 + 1
                if (i2 - i) - 1 > len(best):
                    best = response[i:i2]
                j = j2
            else:
                j += 1
        i += max(len(best), 1)
        if best:
            fragments.append(best)
    return fragments


@register("grusky")
class Grusky:
    """Extractive coverage and density of the response against a text (WoW's knowledge), mean and std:
    ``coverage = sum |f| / |response|``, ``density = sum |f|^2 / |response|`` over ``extractive_fragments``,
    both 0 for an empty response; words are whitespace words. ``against`` names a column, or ``column.key``
    a key of a JSON column (the dialog tables keep the knowledge in ``meta``)."""

    version = "1"

    def __init__(self, against: str = "knowledge"):
        self.against = against

    def _sources(self, group: EvalGroup) -> list[str]:
        if self.against in group.rows or "." not in self.against:
            return group.column(self.against, "grusky").astype(str).tolist()
        column, key = self.against.split(".", 1)
        return [str(json.loads(meta)[key]) for meta in group.column(column, "grusky")]

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        coverage, density = [], []
        for resp, source in zip(group.column("completion", "grusky"), self._sources(group)):
            words = resp.split()
            frags = extractive_fragments(words, source.split())
            coverage.append(sum(len(f) for f in frags) / len(words) if words else 0.0)
            density.append(sum(len(f) ** 2 for f in frags) / len(words) if words else 0.0)
        return {
            "coverage": float(np.mean(coverage)),
            "coverage_std": float(np.std(coverage)),
            "density": float(np.mean(density)),
            "density_std": float(np.std(density)),
        }
