"""[LoL] WoW / FaithDial knowledge-grounded dialogue records (docs/sources.md §1.2)."""

from __future__ import annotations

import json

import pytest
from data_helpers import EOS, build_task, load_task, quarantine_reasons


@pytest.fixture(scope="module")
def res(word_tokenizer_dir):
    tok = f"{{path: {word_tokenizer_dir}}}"
    return build_task(
        load_task(
            "faithdial",
            [
                "sources.wow.path=data/fixtures/wizard_of_wikipedia",
                "sources.faithdial.path=data/fixtures/faithdial",
                *(
                    f"datasets.{d}.options.tokenizer={tok}"
                    for d in ("wow_dialog", "faithdial_dialog", "faithdial_wow_dialog")
                ),
                "datasets.faithdial_dialog.options.max_history_tokens=12",  # word-level tokens
            ],
        )
    )


def test_wow_wizard_turns(res):
    wow = res["wow"]
    assert wow.counts() == {
        "input_rows": 12,
        "kept_rows": 3,
        "quarantined_rows": 2,
        "dropped_empty_history": 1,
        "dropped_no_checked_sentence": 1,
        "dropped_not_wizard_turn": 5,
    }
    assert quarantine_reasons(wow) == [
        ("wizard_of_wikipedia/train.json", 2, "dialog", "expected a list, got str"),
        ("wizard_of_wikipedia/train.json", 3, "dialog[1].text", "missing field"),
    ]
    rows = res["wow_dialog"].kept.set_index("id")
    assert rows.loc["wow/train-1-2", "prompt"] == (
        f"Knowledge: Cats sleep 12 to 16 hours a day.{EOS}Cats are great pets.{EOS}I love cats! Do they sleep a lot?{EOS}"
    )
    assert rows.loc["wow/train-1-6", "completion"] == f"Mostly meat.{EOS}"  # stripped
    assert dict(zip(rows.index, rows["split"])) == {
        "wow/train-1-2": "train",
        "wow/train-1-6": "train",
        "wow/val-1-1": "val",
        "faithdial/test-1-0": "test",
    }


def test_faithdial_utterances_and_history_limit(res):
    fd = res["faithdial"]
    assert [q[1:] for q in quarantine_reasons(fd)] == [
        (2, "utterances[0].history", "empty history"),
        (2, "utterances[1].knowledge", "empty text"),
        (2, "utterances[2].response", "expected a string, got int"),
    ]
    rows = res["faithdial_dialog"].kept.set_index("id")
    # a 3-utterance history of 5 + 7 + 16 words (+ EOS) is over 12 tokens: the two oldest go
    assert rows.loc["faithdial/train-1-1", "prompt"] == (
        f"Knowledge: Jazz originated in the late 19th century.{EOS}"
        f"When was that exactly, do you know the decade or the year it started in?{EOS}"
    )
    assert json.loads(rows.loc["faithdial/train-1-1", "meta"])["history_dropped"] == 2


def test_faithdial_wow_mixes_and_shuffles_train(res):
    mix = res["faithdial_wow_dialog"]
    assert mix.counts() == {"input_rows": 7, "kept_rows": 7, "quarantined_rows": 0}
    by_split = mix.kept.groupby("split")["id"].apply(set).to_dict()
    assert by_split == {
        "train": {"wow/train-1-2", "wow/train-1-6", "faithdial/train-1-0", "faithdial/train-1-1"},
        "val": {"wow/val-1-1", "faithdial/val-1-0"},
        "test": {"faithdial/test-1-0"},
    }
