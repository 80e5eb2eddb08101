"""[LoL] COMET data: ATOMIC-10x train/val and best-tail ATOMIC-2020 test (docs/sources.md §1.2)."""

from __future__ import annotations

import pytest
from data_helpers import build_task, load_task, quarantine_reasons

from rlhf_core.rewards.base import register

FIXTURE = [
    "sources.atomic10x.path=data/fixtures/atomic10x",
    "sources.atomic2020.path=data/fixtures/atomic2020",
    "datasets.comet_generation.options.val_size=2",
]


@register("test_tail_length")
class TailLengthScorer:
    """Stands in for the COMET critic: len(tail) / 100."""

    name, version = "test_tail_length", "1"

    def __call__(self, prompts, completions, **kwargs):
        return [len(c) / 100 for c in completions]


@pytest.fixture(scope="module")
def res():
    return build_task(load_task("comet", FIXTURE + ["datasets.comet_generation.options.scorer=test_tail_length"]))


def test_loaders(res):
    a10 = res["atomic10x"]
    assert a10.counts() == {"input_rows": 10, "kept_rows": 5, "quarantined_rows": 4, "dropped_other_split": 1}
    assert [q[1:3] for q in quarantine_reasons(a10)] == [
        (7, "<line>"),
        (8, "p_valid_model"),
        (9, "tail"),
        (10, "p_valid_model"),
    ]
    a20 = res["atomic2020"]
    assert a20.counts() == {"input_rows": 11, "kept_rows": 9, "quarantined_rows": 2}
    assert [q[1:] for q in quarantine_reasons(a20)] == [
        (10, "p_valid_model", "not a number: 'n/a'"),
        (11, "<line>", "expected 3 or 4 tab-separated columns, got 2"),
    ]


def test_generation_rows(res):
    gen = res["comet_generation"]
    assert gen.counts() == {
        "input_rows": 14,
        "kept_rows": 8,
        "quarantined_rows": 0,
        "dropped_not_best_tail": 3,
        "dropped_relation_not_used": 2,
        "dropped_val_subsample": 1,
    }
    rows = gen.kept
    assert list(rows[rows["split"] == "train"]["score"]) == [0.91, 0.83]  # stored p_valid_model
    assert (rows["split"] == "val").sum() == 2
    test = rows[rows["split"] == "test"]
    assert list(zip(test["prompt"], test["completion"], test["score"])) == [
        ("<head> PersonX pays the bill </head> <relation> xIntent </relation> [GEN] ", "to settle the debt", 0.8),
        ("<head> PersonX pays the bill </head> <relation> xReact </relation> [GEN] ", "relieved", 0.7),
        ("<head> PersonX trips </head> <relation> HinderedBy </relation> [GEN] ", "the floor is clean", 0.55),
        ("<head> PersonX trips </head> <relation> xEffect </relation> [GEN] ", "falls", 0.05),  # scored by the scorer
    ]


def test_missing_scores_without_scorer_fail_clearly():
    with pytest.raises(ValueError, match="1 test tails have no score and no 'scorer' option"):
        build_task(load_task("comet", FIXTURE))
