"""A task's reward function R: the weighted sum of its transformed components (docs/sources.md §3.2, §3.3).

    R(x, y) = sum_k  w_k * T_k(s_k(x, y))

``s_k`` is component k's scorer, ``w_k`` its weight and ``T_k`` its transform, all from the task's
``annotation.scorers`` (e.g. the demo's R is ``sigmoid`` of its trained reward model's logit, as
HHA's is; Reddit sums five components with weight 1). The same function gives the ``rewards``
asset from stored annotations (``reward_from_scores``) and scores fresh samples (``RewardFunction``),
so the R that offline RL trains on, the one V_ref is fitted to and the one evaluated are one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.rewards.base import Scorer

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda s: s,
    "sigmoid": lambda s: 1 / (1 + np.exp(-s)),
}


@dataclass(frozen=True)
class Term:
    weight: float
    transform: str = "identity"


def terms(scorers: Mapping[str, Any]) -> dict[str, Term]:
    """The reward terms of a task's ``annotation.scorers`` (anything with weight and transform)."""
    return {name: Term(float(spec.weight), spec.transform) for name, spec in scorers.items()}


def weighted(terms_: Mapping[str, Term]) -> list[str]:
    """The components R depends on (weight 0: reported, not rewarded)."""
    return [name for name, t in terms_.items() if t.weight != 0]


def reward_from_scores(scores: pd.DataFrame, terms_: Mapping[str, Term]) -> pd.Series:
    """R per row from one column of raw scores per weighted component."""
    missing = sorted(set(weighted(terms_)) - set(scores.columns))
    if missing:
        raise KeyError(f"no scores for weighted component(s) {missing}")
    total = pd.Series(0.0, index=scores.index)
    for name in weighted(terms_):
        t = terms_[name]
        if t.transform not in TRANSFORMS:
            raise ValueError(f"component {name!r}: unknown transform {t.transform!r}; known: {sorted(TRANSFORMS)}")
        total = total + t.weight * TRANSFORMS[t.transform](scores[name].to_numpy(dtype=np.float64))
    return total


class RewardFunction:
    """R over opened scorers, with the TRL reward-function signature; ``scores`` gives the breakdown."""

    name = "reward"

    def __init__(self, scorers: Mapping[str, Scorer], terms_: Mapping[str, Term]):
        missing = sorted(set(weighted(terms_)) - set(scorers))
        if missing:
            raise KeyError(f"no scorer for weighted component(s) {missing}")
        self.scorers, self.terms = dict(scorers), dict(terms_)

    def scores(self, prompts: list[str], completions: list[str], weighted_only: bool = False) -> pd.DataFrame:
        """One raw-score column per component (plus a scorer's own breakdown, if it has ``components``)
        and ``reward``, R."""
        names = weighted(self.terms) if weighted_only else list(self.scorers)
        out = pd.DataFrame(index=range(len(prompts)))
        for name in names:
            scorer = self.scorers[name]
            out[name] = np.asarray(scorer(prompts, completions), dtype=np.float64)
            breakdown = getattr(scorer, "components", None)
            if breakdown is not None and not weighted_only:
                parts = breakdown(prompts, completions)
                out = out.join(parts.drop(columns=[c for c in parts if c in out or c == scorer.name]))
        out["reward"] = reward_from_scores(out, self.terms)
        return out

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return self.scores(prompts, completions, weighted_only=True)["reward"].tolist()
