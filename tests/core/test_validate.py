"""Validators behind the asset checks."""

import pandas as pd
import pytest

from rlhf_core.data.validate import at_least, finite_columns, preference_pairs_valid


def test_pairs_with_identical_or_empty_responses_fail():
    ok = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["a", "b"], "rejected": ["c", "d"]})
    assert preference_pairs_valid(ok)[0]
    bad = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["a", " "], "rejected": ["a", "d"]})
    passed, meta = preference_pairs_valid(bad)
    assert not passed and meta["identical_pairs"] == 1 and meta["empty_responses"] == 1


def test_no_pairs_fail_unless_an_empty_table_is_allowed():
    none = pd.DataFrame({"prompt": [], "chosen": [], "rejected": []}, dtype=str)
    assert not preference_pairs_valid(none)[0]
    assert preference_pairs_valid(none, allow_empty=True) == (
        True,
        {"rows": 0, "empty_responses": 0, "identical_pairs": 0},
    )
    bad = pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["a"]})
    assert not preference_pairs_valid(bad, allow_empty=True)[0]  # the rows there still must be valid


def test_pairs_without_the_trl_columns_are_an_error():
    with pytest.raises(ValueError, match="missing column"):
        preference_pairs_valid(pd.DataFrame({"prompt": ["p"], "chosen": ["a"]}))


def test_thresholds_and_finite_scores():
    assert at_least(0.84, 0.8, "accuracy") == (True, {"accuracy": 0.84, "threshold": 0.8})
    assert not finite_columns(pd.DataFrame({"r": [1.0, float("nan")]}))[0]
