"""One scorer signature and a registry by name that discovers its modules.

A scorer is a TRL-compatible reward function ``scorer(prompts, completions, **kwargs) -> list[float]``
with a ``name`` and a ``version`` (bump it when the scores it gives would change, so only its
annotation partitions go stale). Task YAMLs name scorers; they never hold Python paths.

    @register("length")
    class LengthScorer: ...
    scorer = build_scorer("length")

A scorer that needs more than its parameters says so, and no stage names it:

- ``needs = Needs(config=("world", "gold"), tables=("world",))``: task-config paths and pipeline
  tables (``data``: the annotated dataset; ``world``: the gold judge's source) it is prepared from;
- ``prepare(state_dir, config, tables, **params)``: fit and write its state (a tf-idf vocabulary,
  a copy of the facts it judges by) into the scorer artifact;
- ``from_state(state_dir, **params)``: load it again from that artifact alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from rlhf_core.registry import Registry


@runtime_checkable
class Scorer(Protocol):
    name: str
    version: str

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]: ...


@dataclass(frozen=True)
class Needs:
    config: tuple[str, ...] = ()  # task-config paths, e.g. "gold"
    tables: tuple[str, ...] = ()  # "data" (the annotated dataset) or "world" (the gold judge's source)


class ScorerLoadError(RuntimeError):
    """A configured scorer cannot be built (missing weights, bad parameters, unknown name)."""


SCORERS: Registry[Callable[..., Scorer]] = Registry("scorer", "rlhf_core.rewards")
register, _factory = SCORERS.register, SCORERS.get  # ``@register("name")`` on a scorer's class


def build_scorer(name: str, **params: Any) -> Scorer:
    return _factory(name)(**params)


def scorer_code(name: str, params: dict[str, Any]) -> list[Callable[..., Scorer]]:
    """The code a configured scorer runs, for the keys of the stages that use it: its class and, for
    a scorer that wraps another (``wraps``: the parameter naming it), the wrapped one's."""
    factory = _factory(name)
    wraps = getattr(factory, "wraps", None)
    return [factory, *(scorer_code(params[wraps], params) if wraps in params else [])]


def scorer_needs(name: str) -> Needs:
    return getattr(_factory(name), "needs", Needs())


def scorer_legend(name: str) -> tuple[str, dict[str, str]]:
    """What a scorer's score means (its docstring's first sentence) and, for a scorer with a
    breakdown, what each of its extra columns means (its ``breakdown_legend``)."""
    factory = _factory(name)
    doc = " ".join((factory.__doc__ or name).split())
    return doc.split(". ")[0].rstrip("."), dict(getattr(factory, "breakdown_legend", {}))


def prepare_scorer(
    name: str, params: dict[str, Any], state_dir: Path, config: dict[str, Any], tables: dict[str, pd.DataFrame]
) -> None:
    """Write what the scorer needs beyond its parameters into ``state_dir`` (nothing for most)."""
    prepare = getattr(_factory(name), "prepare", None)
    if prepare is not None:
        prepare(state_dir, config, tables, **params)


def open_scorer(name: str, params: dict[str, Any], state_dir: Path) -> Scorer:
    """The scorer from its parameters and the state ``prepare_scorer`` wrote."""
    factory = _factory(name)
    from_state = getattr(factory, "from_state", None)
    return from_state(state_dir, **params) if from_state is not None else factory(**params)
