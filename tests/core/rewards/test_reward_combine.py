"""R = sum_k w_k * T_k(s_k): from stored scores and over live scorers, one function."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rlhf_core.rewards.base import build_scorer
from rlhf_core.rewards.combine import RewardFunction, Term, reward_from_scores


class Constant:
    name, version = "constant", "1"

    def __init__(self, value):
        self.value = value

    def __call__(self, prompts, completions, **kwargs):
        return [self.value] * len(completions)


def test_weighted_sum_with_transforms_from_stored_scores():
    scores = pd.DataFrame({"fluency": [0.5, 0.25], "rm": [0.0, 2.0], "length": [3.0, 9.0]})
    terms = {"fluency": Term(1.0), "rm": Term(2.0, "sigmoid"), "length": Term(0.0)}
    expected = [0.5 + 2.0 * 0.5, 0.25 + 2.0 / (1.0 + math.exp(-2.0))]
    assert reward_from_scores(scores, terms).tolist() == pytest.approx(expected)
    with pytest.raises(KeyError, match="depth"):
        reward_from_scores(scores, {"depth": Term(1.0)})
    with pytest.raises(ValueError, match="unknown transform"):
        reward_from_scores(scores, {"rm": Term(1.0, "cube")})


def test_the_reward_function_scores_components_and_reports_unweighted_ones():
    reward = RewardFunction(
        {"length": build_scorer("length"), "bonus": Constant(0.5)}, {"length": Term(1.0), "bonus": Term(0.0)}
    )
    parts = reward.scores(["q", "q"], ["one two", "one two three"])
    assert parts.to_dict("list") == {"length": [2.0, 3.0], "bonus": [0.5, 0.5], "reward": [2.0, 3.0]}
    assert reward(["q"], ["a b c d"]) == [4.0]


def test_a_weighted_component_needs_a_scorer():
    with pytest.raises(KeyError, match="bonus"):
        RewardFunction({"length": build_scorer("length")}, {"bonus": Term(1.0)})
