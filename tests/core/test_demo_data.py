"""The demo's raw feedback: deterministic, with malformed rows quarantined and every row accounted for."""

import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.data.registry import get_builder, get_loader

MICRO = ["world.n_prompts={train: 30, val: 5, test: 5}", "world.malformed_rows=6"]


@pytest.fixture(scope="module")
def task():
    return load_config(task_config_path("demo"), MICRO)


def test_generation_is_deterministic(task):
    a = get_loader("demo_feedback")(task.sources["feedback"], task)
    b = get_loader("demo_feedback")(task.sources["feedback"], task)
    assert a.kept.equals(b.kept)


def test_each_injected_fault_is_quarantined_or_dropped_with_its_reason(task):
    raw = get_loader("demo_feedback")(task.sources["feedback"], task)
    assert raw.counts()["input_rows"] == 40 + 6
    reasons = set(raw.quarantined["reason"])
    assert any(r.startswith("invalid JSON") for r in reasons)
    assert {"missing field", "expected list, got str", "empty or non-string response"} <= reasons
    assert any(r.startswith("labels must be 6 values") for r in reasons)
    clean = get_builder("demo_clean_feedback")({"feedback": raw.kept}, task.datasets["clean_feedback"], task)
    assert clean.dropped == {"duplicate": 1, "too_long": 0}


def test_preference_pairs_follow_the_labels(task):
    raw = get_loader("demo_feedback")(task.sources["feedback"], task).kept
    pairs = get_builder("demo_preference_pairs")({"c": raw}, task.datasets["preference_pairs"], task)
    n_ties = sum(label == 0 for labels in raw["preference"] for label in labels)
    assert pairs.dropped == {"tie": n_ties}
    assert len(pairs.kept) == 6 * len(raw) - n_ties
    first = raw.iloc[0]
    label = first["preference"][0]  # the (response 1, response 2) pair
    if label:
        row = pairs.kept[pairs.kept["id"] == f"{first['id']}-01"].iloc[0]
        winner = first["responses"][0] if label == 1 else first["responses"][1]
        assert row["chosen"] == winner
