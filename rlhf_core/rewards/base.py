"""One scorer signature, a registry by name, and weighted combination.

A scorer is a TRL-compatible reward function ``scorer(prompts, completions, **kwargs) -> list[float]``
with a ``name`` and a ``version`` (bump it when the scores it gives would change, so only its
annotation partitions go stale). Task YAMLs name scorers; they never hold Python paths.

    @register("length")
    class LengthScorer: ...
    scorer = build_scorer("length")
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable


@runtime_checkable
class Scorer(Protocol):
    name: str
    version: str

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]: ...


class ScorerLoadError(RuntimeError):
    """A configured scorer cannot be built (missing weights, bad parameters, unknown name)."""


_REGISTRY: dict[str, Callable[..., Scorer]] = {}


def register(name: str) -> Callable[[Callable[..., Scorer]], Callable[..., Scorer]]:
    def deco(factory: Callable[..., Scorer]) -> Callable[..., Scorer]:
        if name in _REGISTRY:
            raise ValueError(f"scorer {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def build_scorer(name: str, **params: Any) -> Scorer:
    _import_builtin_scorers()
    if name not in _REGISTRY:
        raise KeyError(f"unknown scorer {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**params)


def registered_scorers() -> list[str]:
    _import_builtin_scorers()
    return sorted(_REGISTRY)


def weighted_sum(scores: dict[str, list[float]], weights: dict[str, float]) -> list[float]:
    """Combine component scores row by row: sum_k w_k * s_k (docs/sources.md §3.2 uses all weights 1)."""
    missing = sorted(set(weights) - set(scores))
    if missing:
        raise KeyError(f"weights name components that were not scored: {missing}")
    n = {len(v) for v in scores.values()}
    if len(n) > 1:
        raise ValueError(f"component score lists differ in length: { {k: len(v) for k, v in scores.items()} }")
    rows = n.pop() if n else 0
    return [sum(w * scores[k][i] for k, w in weights.items()) for i in range(rows)]


def _import_builtin_scorers() -> None:
    # Registration happens on import; the model scorers import transformers only when they load.
    from rlhf_core.rewards import (  # noqa: F401
        classifiers,
        combine,
        comet_critic,
        dialogrpt,
        perspective,
        simple,
        toxichat,
    )
