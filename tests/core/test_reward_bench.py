"""[RF] RewardBench scoring against hand-computed values (docs/sources.md §7.5)."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_core.eval.reward_bench import (
    EXAMPLE_COUNTS,
    SECTION_OF,
    SEED_EXAMPLE_COUNTS,
    overall_score,
    pairwise_correct,
    section_scores,
    subset_accuracy,
)

# One accuracy per subset, chosen so each section's weighted mean is easy to check by hand.
ACCURACY = {
    # Chat: (100*1 + 95*.8 + 95*.6 + 28*.5 + 40*.25) / 358 = 257 / 358
    "alpacaeval-easy": 1.0,
    "alpacaeval-length": 0.8,
    "alpacaeval-hard": 0.6,
    "mt-bench-easy": 0.5,
    "mt-bench-med": 0.25,
    # Chat Hard: (37*1 + (100+134+92+47+46)*.5) / 456 = 246.5 / 456
    "mt-bench-hard": 1.0,
    "llmbar-natural": 0.5,
    "llmbar-adver-neighbor": 0.5,
    "llmbar-adver-GPTInst": 0.5,
    "llmbar-adver-GPTOut": 0.5,
    "llmbar-adver-manual": 0.5,
    # Safety: (100 + 100 + 154*0 + 250*1 + 136*.5) / 740 = 518 / 740 = .70
    "refusals-dangerous": 1.0,
    "refusals-offensive": 1.0,
    "xstest-should-refuse": 0.0,
    "xstest-should-respond": 1.0,
    "donotanswer": 0.5,
    # Reasoning: (984*.5 + 6*164*1) / 1968 = .75
    "math-prm": 0.5,
    "hep-cpp": 1.0,
    "hep-go": 1.0,
    "hep-java": 1.0,
    "hep-js": 1.0,
    "hep-python": 1.0,
    "hep-rust": 1.0,
}


def test_pairwise_correct_bt_and_pm():
    assert pairwise_correct([2.0, 1.0, 3.0], [1.0, 1.0, 4.0]).tolist() == [1.0, 0.5, 0.0]  # BT rewards
    assert pairwise_correct([0.7, 0.5, 0.2], 0.5).tolist() == [1.0, 0.5, 0.0]  # PM: P(chosen) vs 0.5


def test_subset_accuracy_is_the_mean_per_subset():
    correct = pairwise_correct([3, 1, 2, 5], [1, 2, 2, 4])  # 1, 0, .5, 1
    acc = subset_accuracy(["alpacaeval-easy", "alpacaeval-easy", "hep-go", "hep-go"], correct)
    assert acc == {"alpacaeval-easy": 0.5, "hep-go": 0.75}
    with pytest.raises(ValueError, match="anthropic_helpful"):
        subset_accuracy(["anthropic_helpful"], [1.0])


def test_section_scores_and_overall_by_hand():
    sections = section_scores(ACCURACY)
    assert sections == pytest.approx(
        {"Chat": 100 * 257 / 358, "Chat Hard": 100 * 246.5 / 456, "Safety": 70.0, "Reasoning": 75.0}
    )
    assert overall_score(sections) == pytest.approx((100 * 257 / 358 + 100 * 246.5 / 456 + 70 + 75) / 4)


def test_seed_counts_swap_xstest():
    # with 250 / 154 the should-refuse zeros weigh more: (100 + 100 + 154 + 68) / 740
    assert section_scores(ACCURACY, SEED_EXAMPLE_COUNTS)["Safety"] == pytest.approx(100 * 422 / 740)
    assert (EXAMPLE_COUNTS["xstest-should-refuse"], EXAMPLE_COUNTS["xstest-should-respond"]) == (154, 250)


def test_counts_cover_every_subset_and_the_filtered_split():
    assert set(EXAMPLE_COUNTS) == set(SECTION_OF) and len(SECTION_OF) == 23
    assert sum(EXAMPLE_COUNTS.values()) - 984 + 447 == 2985  # math-prm's real size; 2,985 filtered examples


def test_missing_subsets_leave_the_weights_and_sections():
    sections = section_scores({"alpacaeval-easy": 1.0, "mt-bench-med": 0.0, "hep-go": 0.25})
    assert sections == pytest.approx({"Chat": 100 * 100 / 140, "Reasoning": 25.0})
    with pytest.raises(ValueError, match="Chat Hard"):
        overall_score(sections)


def test_rows_to_overall_end_to_end():
    subsets = np.repeat(list(SECTION_OF), 2)  # two examples per subset: one right, one tied
    r_chosen = np.tile([1.0, 0.0], len(SECTION_OF))
    correct = pairwise_correct(r_chosen, 0.0)
    sections = section_scores(subset_accuracy(subsets, correct))
    assert sections == pytest.approx(dict.fromkeys(["Chat", "Chat Hard", "Safety", "Reasoning"], 75.0))
    assert overall_score(sections) == pytest.approx(75.0)
