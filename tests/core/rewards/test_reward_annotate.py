"""Incremental annotation: reuse by content hash + scorer version, quarantine with reasons."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rlhf_core.rewards.annotate import annotate, content_hash
from rlhf_core.rewards.base import build_scorer


class CountingScorer:
    """Scores len(completion); records every row it is asked to score."""

    name = "count_len"

    def __init__(self, version: str = "1", bad: str | None = None):
        self.version, self.bad, self.seen = version, bad, []

    def __call__(self, prompts, completions, **kwargs):
        self.seen.extend(completions)
        return [math.nan if c == self.bad else float(len(c)) for c in completions]


def rows(*completions, start=0):
    return pd.DataFrame(
        {
            "row_id": range(start, start + len(completions)),
            "prompt": ["q"] * len(completions),
            "completion": list(completions),
        }
    )


def test_second_run_over_unchanged_rows_scores_nothing():
    scorer = CountingScorer()
    first = annotate(rows("a", "bb", "ccc"), scorer)
    assert first.stats == {"input_rows": 3, "scored": 3, "reused": 0, "quarantined": 0, "truncated": 0}
    assert first.scored["score"].tolist() == [1.0, 2.0, 3.0]
    scorer.seen.clear()
    again = annotate(rows("a", "bb", "ccc", "dddd"), scorer, previous=first.scored)
    assert scorer.seen == ["dddd"]
    assert (again.stats["scored"], again.stats["reused"]) == (1, 3)
    assert again.scored["score"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_reuse_follows_content_not_row_id():
    scorer = CountingScorer()
    first = annotate(rows("a", "bb"), scorer)
    scorer.seen.clear()
    moved = annotate(rows("bb", "a", start=10), scorer, previous=first.scored)
    assert scorer.seen == [] and moved.scored["row_id"].tolist() == [10, 11]
    assert moved.scored["content_hash"].tolist() == [content_hash("q", "bb"), content_hash("q", "a")]


def test_version_bump_rescores_everything():
    first = annotate(rows("a", "bb"), CountingScorer("1"))
    bumped = CountingScorer("2")
    second = annotate(rows("a", "bb"), bumped, previous=first.scored)
    assert bumped.seen == ["a", "bb"] and second.stats["reused"] == 0
    assert set(second.scored["scorer_version"]) == {"2"}


def test_bad_rows_are_quarantined_with_reasons_and_counted():
    table = pd.DataFrame(
        {
            "row_id": [0, 1, 2, 3, 4, 5, 6],
            "prompt": ["q", "q", None, "q", "q", "q", "q"],
            "completion": ["ok", "   ", "fine", 7, "x" * 100, "nan please", "ok"],
        }
    )
    table.loc[6, "row_id"] = 0  # duplicate id
    result = annotate(table, CountingScorer(bad="nan please"), max_chars=50)
    reasons = dict(zip(result.quarantined["row"], result.quarantined["reason"]))
    assert result.scored["row_id"].tolist() == [0]
    assert result.stats == {"input_rows": 7, "scored": 1, "reused": 0, "quarantined": 6, "truncated": 0}
    assert reasons[1] == "empty completion"
    assert reasons[2].startswith("prompt is") and "not text" in reasons[2]  # None (pandas may make it NaN)
    assert "completion is int" in reasons[3]
    assert "characters" in reasons[4]
    assert "non-finite score" in reasons[5]
    assert result.quarantined["reason"].str.contains("duplicate row_id 0").sum() == 1
    assert set(result.quarantined["source"]) == {"count_len"}


def test_identical_rows_are_scored_once():
    scorer = CountingScorer()
    result = annotate(pd.DataFrame({"row_id": [1, 2], "prompt": ["q", "q"], "completion": ["same", "same"]}), scorer)
    assert scorer.seen == ["same"] and result.stats["scored"] == 2


def test_model_scorer_rejections_and_truncation_reach_the_tables(roberta_classifier_dir):
    scorer = build_scorer("faithcritic", model=roberta_classifier_dir)
    eos = "<|endoftext|>"
    table = pd.DataFrame(
        {
            "row_id": ["a", "b", "c"],
            "prompt": ["Knowledge: k" + eos + "h" + eos, "no knowledge turn", "Knowledge: k" + eos],
            "completion": ["fine", "fine", "long " * 100],
        }
    )
    result = annotate(table, scorer)
    assert result.scored["row_id"].tolist() == ["a", "c"]
    assert result.scored["truncated"].tolist() == [False, True]
    assert result.stats["truncated"] == 1 and result.stats["quarantined"] == 1
    assert "no <|endoftext|>" in result.quarantined["reason"].iloc[0]


def test_missing_columns_fail_loudly():
    with pytest.raises(KeyError, match="completion"):
        annotate(pd.DataFrame({"row_id": [1], "prompt": ["q"]}), CountingScorer())
