"""[CRS] oasst1 trees -> ranking RM, absolute RM (rebalanced, augmented) and RL prompts (SPEC 1.3, 2.3)."""
from __future__ import annotations

import pandas as pd
import pytest

from data_helpers import build_task, load_task, quarantine_reasons
from rlhf_core.config import DatasetConfig
from rlhf_core.data.registry import get_builder

TREES = "oasst1/2023-04-12_oasst_all.trees.jsonl.gz"


@pytest.fixture(scope="module")
def res(word_tokenizer_dir):
    return build_task(load_task("oasst_crs", [
        "sources.oasst1.path=data/fixtures/oasst1",
        "sources.crs_augmented.path=data/fixtures/crs_augmented",
        "sources.oasst1.options.val_split=0.25",  # 4 kept trees -> 3 train, 1 val
        f"datasets.rl_prompts.options.tokenizer={{path: {word_tokenizer_dir}}}",
        "datasets.rl_prompts.options.max_query_tokens=12",  # word-level tokens
        "datasets.absolute_rm.options.per_bin=1",
    ]))  # fmt: skip


def test_tree_filters_and_tree_level_split(res):
    trees = res["oasst1"]
    assert trees.counts() == {
        "input_rows": 11, "kept_rows": 4, "quarantined_rows": 4, "dropped_language_not_selected": 1,
        "dropped_prompt_not_reviewed": 1, "dropped_tree_not_ready_for_export": 1,
    }  # fmt: skip
    assert quarantine_reasons(trees) == [
        (TREES, 6, "<line>", "invalid JSON: Expecting value"),
        (TREES, 7, "prompt", "missing field"),
        (TREES, 8, "prompt.role", "unknown role 'moderator'"),
        (TREES, 11, "prompt.replies[0].rank", "expected an int or null, got 'first'"),
    ]
    # torch random_split(generator seed 90) puts t1 in val
    assert dict(zip(trees.kept["id"], trees.kept["split"])) == {"t1": "val", "t2": "train", "t7": "train", "t11": "train"}


def test_ranking_rows(res):
    rm = res["ranking_rm"]
    # 10 prompter threads (t1-p4 sits under a deleted reply and is never a thread); 5 have < 2
    # ranked replies (t1-p3, t7-p2, t11-p2, t11-p3, t11-p4).
    assert rm.counts() == {"input_rows": 10, "kept_rows": 5, "quarantined_rows": 0, "dropped_fewer_than_2_ranked_replies": 5}
    rows = rm.kept.set_index("id")
    assert list(rows.loc["t1-p1", "completions"]) == [
        "A programming language.", "A snake.", "I don't know.", "Python is a language created by Guido van Rossum.",
    ]  # rank order, at most 4 (t1-a5 is 5th; the deleted t1-a6 has no rank)
    assert list(rows.loc["t1-p2", "completions"]) == ["Fast enough for most tasks.", "It is slow."]  # synthetic b3 excluded
    assert rows.loc["t1-p2", "prompt"] == (
        "<|im_start|>user\nWhat is Python?<|im_end|>\n<|im_start|>assistant\nA programming language.<|im_end|>\n"
        "<|im_start|>user\nIs it fast?<|im_end|>\n"
    )


def test_augmented_csv_message_is_parsed_as_a_list(res):
    aug = res["crs_augmented"]
    assert [list(p) for p in aug.kept["prefix"]] == [["What is Python?"], ["Is it fast?", "Yes.", "How fast?"]]
    assert [q[1:] for q in quarantine_reasons(aug)] == [
        (4, "message", "not a Python list literal"),
        (5, "score", "not a number: 'abc'"),
        (6, "score", "outside [0, 1]: 1.5"),
        (7, "reply", "empty text"),
    ]


def test_absolute_rows_rebalanced_and_augmented(res):
    ab = res["absolute_rm"]
    assert ab.counts() == {
        "input_rows": 20, "kept_rows": 12, "quarantined_rows": 0, "dropped_fewer_than_2_ranked_replies": 5,
        "dropped_missing_label": 1, "dropped_rebalance_not_drawn": 2,
    }  # fmt: skip
    train = ab.kept[ab.kept["split"] == "train"]
    oasst_train = train[train["source"] == "oasst"]
    scores = dict(zip(oasst_train["id"], oasst_train["score"]))
    # >= 0.9 (t7-a1) and the single rows of bins (0.4, 0.5] (t2-a2) and (0.8, 0.9] (t2-a1) are kept;
    # one of the three in (0.5, 0.6] (t7-a2 0.52, t11-a1 0.6, t11-a2 0.58) is drawn.
    assert {k: scores[k] for k in ("t7-a1", "t2-a2", "t2-a1")} == {"t7-a1": 0.9, "t2-a2": 0.42, "t2-a1": 0.85}
    drawn = set(scores) - {"t7-a1", "t2-a2", "t2-a1"}
    assert len(drawn) == 1 and drawn <= {"t7-a2", "t11-a1", "t11-a2"}
    assert list(train[train["source"] == "augmented"]["score"]) == [0.18, 0.05]
    val = ab.kept[ab.kept["split"] == "val"]
    # val is not rebalanced; t1-b2 lacks the humor label, the synthetic t1-b3 is excluded
    assert dict(zip(val["id"], val["score"])) == {
        "t1-a1": 0.95, "t1-a2": 0.45, "t1-a3": 0.2, "t1-a4": 0.65, "t1-a5": 0.55, "t1-b1": 0.75,
    }  # fmt: skip
    rerun = build_task(load_task("oasst_crs", [
        "sources.oasst1.path=data/fixtures/oasst1", "sources.crs_augmented.path=data/fixtures/crs_augmented",
        "sources.oasst1.options.val_split=0.25", "datasets.absolute_rm.options.per_bin=1",
    ]), only={"absolute_rm"})["absolute_rm"]  # fmt: skip
    assert list(rerun.kept["id"]) == list(ab.kept["id"])  # seeded: same rows, same order


def test_absolute_weights_and_negative_scores():
    trees = pd.DataFrame({"id": ["t"], "split": ["val"], "lang": ["en"], "tree": [
        '{"message_id": "p", "role": "prompter", "text": "q", "replies": ['
        '{"message_id": "a", "role": "assistant", "text": "x", "rank": 0, "labels": {"violence": {"value": 0}, '
        '"creativity": {"value": 0}, "helpfulness": {"value": 0}, "humor": {"value": 0}, "toxicity": {"value": 0.9}, '
        '"quality": {"value": 0.2}}},'
        '{"message_id": "b", "role": "assistant", "text": "y", "rank": 1, "labels": {"violence": {"value": 0}, '
        '"creativity": {"value": 0}, "helpfulness": {"value": 0}, "humor": {"value": 0}, "toxicity": {"value": 0.0}, '
        '"quality": {"value": 0.8}}}]}'
    ]})  # fmt: skip
    build = get_builder("crs_absolute")
    spec = DatasetConfig("crs_absolute", ["t"], {"label_weights": {"quality": 0.5, "toxicity": -0.5}})
    out = build({"t": trees}, spec, None)
    assert out.counts() == {"input_rows": 2, "kept_rows": 1, "quarantined_rows": 0, "dropped_negative_score": 1}
    assert list(out.kept["score"]) == [0.4]
    with pytest.raises(ValueError, match="sum to 1"):
        build({"t": trees}, DatasetConfig("crs_absolute", ["t"], {"label_weights": {"quality": 0.5}}), None)


def test_rl_prompts_filtered_and_train_cut_to_37_5_percent(res):
    rl = res["rl_prompts"]
    # 10 prompter threads; t1-p2 and t7-p2 exceed 12 tokens; 6 train queries -> int(6 * 0.375) = 2 kept.
    assert rl.counts() == {
        "input_rows": 10, "kept_rows": 4, "quarantined_rows": 0, "dropped_query_too_long": 2,
        "dropped_rl_train_subset": 4,
    }  # fmt: skip
    train = rl.kept[rl.kept["split"] == "train"]
    assert set(train["id"]) <= {"t2-p1", "t7-p1", "t11-p1", "t11-p2", "t11-p3", "t11-p4"} and len(train) == 2
    val = rl.kept[rl.kept["split"] == "val"].set_index("id")
    assert list(val.index) == ["t1-p1", "t1-p3"]
    assert val.loc["t1-p1", "prompt"] == "<|im_start|>user\nWhat is Python?<|im_end|>\n<|im_start|>assistant\n"
