"""Final reward = weighted sum of components, online and from annotation tables."""
from __future__ import annotations

import pandas as pd
import pytest

from rlhf_core.rewards.base import build_scorer
from rlhf_core.rewards.combine import CombinedReward, Component, combine_annotations


class Constant:
    name, version = "constant", "1"

    def __init__(self, value):
        self.value = value

    def __call__(self, prompts, completions, **kwargs):
        return [self.value] * len(completions)


def test_plain_sum_of_components_with_breakdown():
    reward = CombinedReward(
        [{"name": "length", "scorer": "length"}, Component("bonus", "constant-not-registered")],
        scorers={"bonus": Constant(0.5)},
    )
    parts = reward.score_components(["q", "q"], ["one two", "one two three"])
    assert parts == {"length": [2.0, 3.0], "bonus": [0.5, 0.5], "final_reward": [2.5, 3.5]}
    assert reward(["q"], ["a b c d"]) == [4.5]


def test_weights_and_version_follow_the_config():
    a = CombinedReward([Component("length", "length", weight=2.0)])
    b = CombinedReward([Component("length", "length", weight=1.0)])
    assert a(["q"], ["x y"]) == [4.0]
    assert a.version != b.version


def test_registered_as_a_scorer_and_rejects_duplicate_names():
    reward = build_scorer("combined", components=[{"name": "len", "scorer": "length"}])
    assert reward(["q"], ["a"]) == [1.0]
    with pytest.raises(ValueError, match="unique"):
        CombinedReward([Component("x", "length"), Component("x", "length")])


def test_combine_annotations_joins_on_row_id_and_drops_rows_missing_a_component():
    fluency = pd.DataFrame({"row_id": [1, 2, 3], "score": [0.5, 0.25, 1.0]})
    safe = pd.DataFrame({"row_id": [3, 1], "score": [0.0, 1.0]})  # row 2 quarantined by this scorer
    out = combine_annotations({"fluency": fluency, "safe": safe}, {"fluency": 1.0, "safe": 2.0})
    assert out.sort_values("row_id")["final_reward"].tolist() == [2.5, 1.0]
    with pytest.raises(KeyError, match="depth"):
        combine_annotations({"fluency": fluency}, {"depth": 1.0})
