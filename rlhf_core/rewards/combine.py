"""A task's final reward: the weighted sum of its component scorers (docs/sources.md §3.2 uses weight 1 for all).

Components and weights come from the task config, e.g. Reddit (range [0, 5]):

    components = [
        {"name": "fluency", "scorer": "fluency", "params": {"revision": "<sha>"}},
        {"name": "depth", "scorer": "dialogrpt_depth", "params": {"revision": "<sha>"}},
        {"name": "updown", "scorer": "dialogrpt_updown", "params": {"revision": "<sha>"}},
        {"name": "safe", "scorer": "toxichat_safe", "params": {"model": "/models/toxichat"}},
        {"name": "tfidf", "scorer": "diversity", "params": {"state_path": "tfidf.json"}},
    ]
    reward = CombinedReward(components)        # a scorer itself: reward(prompts, completions)
    final = combine_annotations({"fluency": table_a, ...}, {"fluency": 1.0, ...})

COMET uses {p_valid_model: comet_critic}; WoW/FaithDial {fluency, faithdial: faithcritic,
depth: dialogrpt_depth with history_only, tfidf: diversity}.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from rlhf_core.rewards.base import Scorer, build_scorer, register, weighted_sum


@dataclass(frozen=True)
class Component:
    name: str  # key of this component in the reward breakdown ("safe", "tfidf", ...)
    scorer: str  # registered scorer name
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@register("combined")
class CombinedReward:
    """Scores every component and returns ``sum_k weight_k * score_k`` per row."""

    name = "combined"

    def __init__(self, components: list[Component | Mapping[str, Any]], scorers: Mapping[str, Scorer] | None = None):
        """Build the component scorers.

        Args:
            components: ``Component``s or mappings with the same keys (as read from a config).
            scorers: Already built scorers by component name (reused instead of built).
        """
        self.components = [c if isinstance(c, Component) else Component(**c) for c in components]
        names = [c.name for c in self.components]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"component names must be unique and non-empty, got {names}")
        given = dict(scorers or {})
        self.scorers = {c.name: given.get(c.name) or build_scorer(c.scorer, **c.params) for c in self.components}
        self.weights = {c.name: c.weight for c in self.components}
        parts = [[c.name, self.scorers[c.name].name, self.scorers[c.name].version, c.weight] for c in self.components]
        self.version = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def score_components(self, prompts: list[str], completions: list[str]) -> dict[str, list[float]]:
        """Every component's scores plus ``final_reward`` (the breakdown [LoL] stores per row)."""
        scores = {name: list(scorer(prompts, completions)) for name, scorer in self.scorers.items()}
        scores["final_reward"] = weighted_sum(scores, self.weights)
        return scores

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return self.score_components(prompts, completions)["final_reward"]


def combine_annotations(tables: Mapping[str, pd.DataFrame], weights: Mapping[str, float]) -> pd.DataFrame:
    """Join per-component annotation tables on ``row_id`` and add their weighted sum.

    Args:
        tables: Component name -> ``annotate(...).scored`` table of that component's scorer.
        weights: Component name -> weight; every weighted component must have a table.

    Returns:
        One row per ``row_id`` scored by every component: ``row_id``, one column per component,
        ``final_reward``. Rows a component quarantined have no final reward.
    """
    joined: pd.DataFrame | None = None
    for name in weights:
        if name not in tables:
            raise KeyError(f"no annotation table for weighted component {name!r}")
        part = tables[name][["row_id", "score"]].rename(columns={"score": name})
        joined = part if joined is None else joined.merge(part, on="row_id", how="inner")
    if joined is None:
        raise ValueError("no components to combine")
    joined["final_reward"] = weighted_sum({k: joined[k].tolist() for k in weights}, dict(weights))
    return joined.reset_index(drop=True)
