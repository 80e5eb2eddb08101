"""[LoL] HHA from PRO's data.zip: loader validation and the ':'-ending cleaning rule (SPEC 1.2)."""
from __future__ import annotations

import pytest

from data_helpers import EOS, build_task, load_task, quarantine_reasons

FIXTURE = [
    "sources.hh_pro.path=data/fixtures/hh_pro",
    # the fixture ships two of the four test segments
    "sources.hh_pro.files={train: hh_train_len2/train.json, val: hh_dev/sampled_dev.json,"
    " test/harmless_base: hh_test/harmless_base.json, test/helpful_base: hh_test/helpful_base.json}",
]


@pytest.fixture(scope="module")
def res():
    return build_task(load_task("hh_pro", FIXTURE))


def test_loader_rows_and_quarantine(res):
    raw = res["hh_pro"]
    assert raw.counts() == {"input_rows": 15, "kept_rows": 9, "quarantined_rows": 6}
    assert quarantine_reasons(raw) == [
        ("hh_train_len2/train.json", 6, "<line>", "invalid JSON: Expecting ',' delimiter"),
        ("hh_train_len2/train.json", 7, "suffix", "missing field"),
        ("hh_train_len2/train.json", 8, "reward[0]", "expected a number, got str"),
        ("hh_train_len2/train.json", 9, "suffix[1]", "empty text"),
        ("hh_train_len2/train.json", 10, "prefix[0]", "last element must be exactly '<|assistant|>', got '<|prompter|>Where is Rome?'"),
        ("hh_train_len2/train.json", 11, "prefix[1]", "candidates do not share one conversation prefix"),
    ]
    row = raw.kept.set_index("id").loc["train-2"]
    assert row.prompt == (
        f"<|prompter|>Hi{EOS}<|assistant|>Hello! How can I help?{EOS}<|prompter|>Tell me a joke.{EOS}<|assistant|>"
    )
    assert (row.chosen_reward, row.rejected_reward) == (1.5, -0.5)
    assert list(raw.kept.set_index("id").loc["test/helpful_base-1", ["split", "segment"]]) == ["test", "helpful_base"]


def test_colon_endings_dropped_from_train_only(res):
    pairs = res["hh_pairs"]
    assert pairs.counts() == {"input_rows": 9, "kept_rows": 7, "quarantined_rows": 0, "dropped_response_ends_with_colon": 2}
    # train-3 (chosen ends ':') and train-4 (rejected ends ':') go; train-5 ends ': ' (no strip) stays;
    # val-1 and the harmless test row end with ':' but are not training rows.
    assert list(pairs.kept["id"]) == [
        "train-1", "train-2", "train-5", "val-1", "val-2", "test/harmless_base-1", "test/helpful_base-1",
    ]  # fmt: skip
