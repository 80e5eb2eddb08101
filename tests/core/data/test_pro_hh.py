"""[LoL] HHA from PRO's data.zip: loader validation, the ':'-ending cleaning rule (docs/sources.md §1.2) and the
GPT-4 evaluation prompts without ``bad_test_indices.json`` (docs/sources.md §7.3)."""

from __future__ import annotations

import pytest
from data_helpers import EOS, build_task, load_task, quarantine_reasons

from rlhf_core.config import SourceConfig
from rlhf_core.data.quarantine import SourceError
from rlhf_core.data.registry import get_loader
from rlhf_core.data.schemas import PROMPT_ONLY, require_columns

FIXTURE = [
    "sources.hh_pro.path=data/fixtures/hh_pro",
    "sources.hh_bad_test_indices.path=data/fixtures/hh_pro",
    # the fixture ships two of the four test segments
    "sources.hh_pro.files={train: hh_train_len2/train.json, val: hh_dev/sampled_dev.json,"
    " test/harmless_base: hh_test/harmless_base.json, test/helpful_base: hh_test/helpful_base.json}",
]


@pytest.fixture(scope="module")
def res():
    return build_task(load_task("hh_pro", FIXTURE))


def test_loader_rows_and_quarantine(res):
    raw = res["hh_pro"]
    # An empty response is kept, as PRO keeps it, and counted as suspicious.
    assert raw.counts() == {"input_rows": 18, "kept_rows": 12, "quarantined_rows": 6, "suspicious_empty_response": 1}
    assert raw.kept.set_index("id").loc["train-9", "rejected"] == ""
    assert quarantine_reasons(raw) == [
        ("hh_train_len2/train.json", 6, "<line>", "invalid JSON: Expecting ',' delimiter"),
        ("hh_train_len2/train.json", 7, "suffix", "missing field"),
        ("hh_train_len2/train.json", 8, "reward[0]", "expected a number, got str"),
        (
            "hh_train_len2/train.json",
            10,
            "prefix[0]",
            "last element must be exactly '<|assistant|>', got '<|prompter|>Where is Rome?'",
        ),
        ("hh_train_len2/train.json", 11, "prefix[1]", "candidates do not share one conversation prefix"),
        ("hh_test/harmless_base.json", 2, "<line>", "invalid JSON: Expecting ',' delimiter"),
    ]
    row = raw.kept.set_index("id").loc["train-2"]
    assert row.prompt == (
        f"<|prompter|>Hi{EOS}<|assistant|>Hello! How can I help?{EOS}<|prompter|>Tell me a joke.{EOS}<|assistant|>"
    )
    assert (row.chosen_reward, row.rejected_reward, row.line) == (1.5, -0.5, 2)
    assert list(raw.kept.set_index("id").loc["test/helpful_base-1", ["split", "segment"]]) == ["test", "helpful_base"]


def test_colon_endings_dropped_from_train_only(res):
    pairs = res["hh_pairs"]
    assert pairs.counts() == {
        "input_rows": 12,
        "kept_rows": 10,
        "quarantined_rows": 0,
        "dropped_response_ends_with_colon": 2,
    }
    # train-3 (chosen ends ':') and train-4 (rejected ends ':') go; train-5 ends ': ' (no strip) stays;
    # val-1 and the harmless test row end with ':' but are not training rows.
    assert list(pairs.kept["id"]) == [
        "train-1",
        "train-2",
        "train-5",
        "train-9",
        "val-1",
        "val-2",
        "test/harmless_base-1",
        "test/harmless_base-3",
        "test/harmless_base-4",
        "test/helpful_base-1",
    ]


# ----------------------------------------------------------------------------- GPT-4 evaluation prompts


def test_bad_test_indices_loader(res):
    bad = res["hh_bad_test_indices"]
    # 2 + 1 + 3 indices, plus one unit for each unusable entry
    assert bad.counts() == {"input_rows": 8, "kept_rows": 4, "quarantined_rows": 4}
    assert list(zip(bad.kept["segment"], bad.kept["test_index"])) == [
        ("harmless_base", 2),
        ("harmless_base", 40),
        ("helpful_base", 0),
        ("helpful_online", 0),
    ]
    assert quarantine_reasons(bad) == [
        ("hh_test/bad_test_indices.json", 3, "helpful_online.json[1]", "expected a non-negative int, got -1"),
        ("hh_test/bad_test_indices.json", 3, "helpful_online.json[2]", "expected a non-negative int, got '3'"),
        ("hh_test/bad_test_indices.json", 4, "helpful_rejection", "key is not a test file name '<segment>.json'"),
        ("hh_test/bad_test_indices.json", 5, "helpful_rejection.json", "expected a list of test indices, got int"),
    ]


def test_gpt4_eval_prompts_skip_bad_test_indices(res):
    ev = res["gpt4_eval_prompts"]
    # 7 train/val rows are not test rows; of the 4 test rows, harmless_base index 2 (line 3) and
    # helpful_base index 0 are excluded. Index 2 names line 3 although the broken line 2 is
    # quarantined: indices count file lines, not kept rows. harmless_base 40 matches no row.
    assert ev.counts() == {
        "input_rows": 12,
        "kept_rows": 2,
        "quarantined_rows": 0,
        "dropped_bad_test_index": 2,
        "dropped_not_test": 8,
    }
    require_columns(ev.kept, PROMPT_ONLY, "gpt4_eval_prompts")
    assert list(zip(ev.kept["id"], ev.kept["segment"], ev.kept["test_index"])) == [
        ("test/harmless_base-1", "harmless_base", 0),
        ("test/harmless_base-4", "harmless_base", 3),
    ]
    row = ev.kept.set_index("id").loc["test/harmless_base-4"]
    assert row.prompt == (
        f"<|prompter|>Is it safe to eat raw eggs?{EOS}<|assistant|>Usually not.{EOS}<|prompter|>Why not?{EOS}<|assistant|>"
    )
    assert list(row.prefix) == [
        "<|prompter|>Is it safe to eat raw eggs?",
        "<|assistant|>Usually not.",
        "<|prompter|>Why not?",
        "<|assistant|>",
    ]


def test_bad_test_indices_file_must_be_an_object(tmp_path):
    (tmp_path / "bad.json").write_text("[47, 114]")
    src = SourceConfig(loader="pro_hh_bad_test_indices", path=str(tmp_path), files={"indices": "bad.json"})
    with pytest.raises(SourceError, match=r"bad.json: expected an object of segment file -> indices, got list"):
        get_loader("pro_hh_bad_test_indices")(src, None)
