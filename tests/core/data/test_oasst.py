"""[CRS] oasst1 trees -> SFT threads, ranking RM, absolute RM (rebalanced, augmented) and RL prompts
(docs/sources.md §1.3, §2.3, §4); the committed evaluation prompt files (docs/sources.md §7.4)."""

from __future__ import annotations

import pandas as pd
import pytest
from data_helpers import build_task, load_task, quarantine_reasons

from rlhf_core.config import DatasetConfig, SourceConfig
from rlhf_core.data.quarantine import SourceError
from rlhf_core.data.registry import get_builder, get_loader
from rlhf_core.data.schemas import MESSAGES, PROMPT_COMPLETION, PROMPT_ONLY, require_columns

TREES = "oasst1/2023-04-12_oasst_all.trees.jsonl.gz"
SFT_FIXTURE = [
    "sources.oasst1_sft.path=data/fixtures/oasst1",
    "sources.oasst1_sft.options.val_split=0.34",  # 6 kept trees -> 4 train, 2 val
]


@pytest.fixture(scope="module")
def res(word_tokenizer_dir):
    return build_task(
        load_task(
            "oasst_crs",
            SFT_FIXTURE
            + [
                "sources.oasst1.path=data/fixtures/oasst1",
                "sources.crs_augmented.path=data/fixtures/crs_augmented",
                "sources.crs_eval_prompts.path=data/fixtures/oasst1/crs_eval_prompts",
                "sources.oasst1.options.val_split=0.25",  # 4 kept trees -> 3 train, 1 val
                f"datasets.rl_prompts.options.tokenizer={{path: {word_tokenizer_dir}}}",
                "datasets.rl_prompts.options.max_query_tokens=12",  # word-level tokens
                "datasets.absolute_rm.options.per_bin=1",
            ],
        )
    )


def test_tree_filters_and_tree_level_split(res):
    trees = res["oasst1"]
    # ja (t5), it (t12) and nl (t13) are not RM / RL languages
    assert trees.counts() == {
        "input_rows": 13,
        "kept_rows": 4,
        "quarantined_rows": 4,
        "dropped_language_not_selected": 3,
        "dropped_prompt_not_reviewed": 1,
        "dropped_tree_not_ready_for_export": 1,
    }
    assert quarantine_reasons(trees) == [
        (TREES, 6, "<line>", "invalid JSON: Expecting value"),
        (TREES, 7, "prompt", "missing field"),
        (TREES, 8, "prompt.role", "unknown role 'moderator'"),
        (TREES, 11, "prompt.replies[0].rank", "expected an int or null, got 'first'"),
    ]
    # torch random_split(generator seed 90) puts t1 in val
    assert dict(zip(trees.kept["id"], trees.kept["split"])) == {
        "t1": "val",
        "t2": "train",
        "t7": "train",
        "t11": "train",
    }


def test_ranking_rows(res):
    rm = res["ranking_rm"]
    # 10 prompter threads (t1-p4 sits under a deleted reply and is never a thread); 5 have < 2
    # ranked replies (t1-p3, t7-p2, t11-p2, t11-p3, t11-p4).
    assert rm.counts() == {
        "input_rows": 10,
        "kept_rows": 5,
        "quarantined_rows": 0,
        "dropped_fewer_than_2_ranked_replies": 5,
    }
    rows = rm.kept.set_index("id")
    assert list(rows.loc["t1-p1", "completions"]) == [
        "A programming language.",
        "A snake.",
        "I don't know.",
        "Python is a language created by Guido van Rossum.",
    ]  # rank order, at most 4 (t1-a5 is 5th; the deleted t1-a6 has no rank)
    assert list(rows.loc["t1-p2", "completions"]) == [
        "Fast enough for most tasks.",
        "It is slow.",
    ]  # synthetic b3 excluded
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
        "input_rows": 20,
        "kept_rows": 12,
        "quarantined_rows": 0,
        "dropped_fewer_than_2_ranked_replies": 5,
        "dropped_missing_label": 1,
        "dropped_rebalance_not_drawn": 2,
    }
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
        "t1-a1": 0.95,
        "t1-a2": 0.45,
        "t1-a3": 0.2,
        "t1-a4": 0.65,
        "t1-a5": 0.55,
        "t1-b1": 0.75,
    }
    rerun = build_task(
        load_task(
            "oasst_crs",
            [
                "sources.oasst1.path=data/fixtures/oasst1",
                "sources.crs_augmented.path=data/fixtures/crs_augmented",
                "sources.oasst1.options.val_split=0.25",
                "datasets.absolute_rm.options.per_bin=1",
            ],
        ),
        only={"absolute_rm"},
    )["absolute_rm"]
    assert list(rerun.kept["id"]) == list(ab.kept["id"])  # seeded: same rows, same order


def test_absolute_weights_and_negative_scores():
    trees = pd.DataFrame(
        {
            "id": ["t"],
            "split": ["val"],
            "lang": ["en"],
            "tree": [
                '{"message_id": "p", "role": "prompter", "text": "q", "replies": ['
                '{"message_id": "a", "role": "assistant", "text": "x", "rank": 0, "labels": {"violence": {"value": 0}, '
                '"creativity": {"value": 0}, "helpfulness": {"value": 0}, "humor": {"value": 0}, "toxicity": {"value": 0.9}, '
                '"quality": {"value": 0.2}}},'
                '{"message_id": "b", "role": "assistant", "text": "y", "rank": 1, "labels": {"violence": {"value": 0}, '
                '"creativity": {"value": 0}, "helpfulness": {"value": 0}, "humor": {"value": 0}, "toxicity": {"value": 0.0}, '
                '"quality": {"value": 0.8}}}]}'
            ],
        }
    )
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
        "input_rows": 10,
        "kept_rows": 4,
        "quarantined_rows": 0,
        "dropped_query_too_long": 2,
        "dropped_rl_train_subset": 4,
    }
    train = rl.kept[rl.kept["split"] == "train"]
    assert set(train["id"]) <= {"t2-p1", "t7-p1", "t11-p1", "t11-p2", "t11-p3", "t11-p4"} and len(train) == 2
    val = rl.kept[rl.kept["split"] == "val"].set_index("id")
    assert list(val.index) == ["t1-p1", "t1-p3"]
    assert val.loc["t1-p1", "prompt"] == "<|im_start|>user\nWhat is Python?<|im_end|>\n<|im_start|>assistant\n"


# ----------------------------------------------------------------------------- SFT threads


def test_sft_trees_use_the_sft_languages_and_their_own_split(res):
    trees = res["oasst1_sft"]
    # it (t12) and nl (t13) are SFT languages; ja (t5) is in neither list
    assert trees.counts()["dropped_language_not_selected"] == 1 and trees.counts()["kept_rows"] == 6
    # torch random_split(generator seed 90) over these 6 trees
    assert dict(zip(trees.kept["id"], trees.kept["split"])) == {
        "t1": "train",
        "t2": "train",
        "t7": "val",
        "t11": "train",
        "t12": "train",
        "t13": "val",
    }


def test_sft_threads_end_on_the_top_ranked_assistant(res):
    sft = res["sft_threads"]
    # 19 leaves. t1: b1 kept; b2, c1 (under a2), a3, a4, a5 not rank 0; synthetic b3 and p4 (under the
    # deleted a6). t2, t7, t11: one rank-1 leaf each. t12: a2 unranked beside a1; p3 is a1's second
    # prompter reply; a4 answers an assistant (quarantined). t13: a prompt without replies.
    assert sft.counts() == {
        "input_rows": 19,
        "kept_rows": 5,
        "quarantined_rows": 1,
        "dropped_deleted_or_synthetic": 2,
        "dropped_not_top_k": 9,
        "dropped_prompt_without_reply": 1,
        "dropped_prompter_leaf_not_first_reply": 1,
    }
    assert quarantine_reasons(sft) == [
        ("crs_sft_threads", 5, "role", "thread ending at t12-a4: roles do not alternate prompter/assistant")
    ]
    require_columns(sft.kept, PROMPT_COMPLETION + MESSAGES, "sft_threads")
    rows = sft.kept.set_index("id")
    # t7, t11 and t12 ended on a prompter leaf, which is popped
    assert list(zip(rows.index, rows["split"], rows["lang"])) == [
        ("t1-b1", "train", "en"),
        ("t2-a1", "train", "de"),
        ("t7-a1", "val", "en"),
        ("t11-a3", "train", "en"),
        ("t12-a1", "train", "it"),
    ]
    t11 = rows.loc["t11-a3"]
    assert t11.prompt == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    )
    assert t11.completion == "Ok<|im_end|>\n"
    assert list(t11.messages) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Ok"},
    ]


def test_sft_threads_without_top_k_keep_every_rank():
    out = build_task(
        load_task("oasst_crs", SFT_FIXTURE + ["datasets.sft_threads.options.top_k=null"]), only={"sft_threads"}
    )["sft_threads"]
    assert out.counts() == {
        "input_rows": 19,
        "kept_rows": 14,
        "quarantined_rows": 1,
        "dropped_deleted_or_synthetic": 2,
        "dropped_prompt_without_reply": 1,
        "dropped_prompter_leaf_not_first_reply": 1,
    }
    # depth first in reply order; t11-a2 keeps its thread through its popped prompter leaf t11-p3
    assert list(out.kept["id"]) == [
        "t1-b1",
        "t1-b2",
        "t1-c1",
        "t1-a3",
        "t1-a4",
        "t1-a5",
        "t2-a1",
        "t2-a2",
        "t7-a1",
        "t7-a2",
        "t11-a3",
        "t11-a2",
        "t12-a1",
        "t12-a2",
    ]


# ----------------------------------------------------------------------------- evaluation prompts


def test_eval_prompt_files_as_committed(res):
    ev = res["crs_eval_prompts"]
    assert ev.counts() == {"input_rows": 11, "kept_rows": 8, "quarantined_rows": 3}
    require_columns(ev.kept, PROMPT_ONLY, "crs_eval_prompts")
    assert list(zip(ev.kept["id"], ev.kept["dataset"])) == [
        ("final-0", "helpful_base"),
        ("final-1", "koala"),
        ("final-2", "vicuna"),
        ("final-3", "oasst"),
        ("hp_tuning-0", "oasst"),
        ("hp_tuning-1", "oasst"),
        ("humaneval-0", "oasst"),
        ("humaneval-1", "vicuna"),
    ]
    assert set(ev.kept["split"]) == {"final", "hp_tuning", "humaneval"}
    assert ev.kept.set_index("id").loc["hp_tuning-0", "prompt"] == (
        "<|im_start|>user\n¿Dónde está el Museo del Prado?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert [q[1:] for q in quarantine_reasons(ev)] == [
        (5, "instruction", "not a ChatML query '<|im_start|>user\\n...<|im_start|>assistant\\n'"),
        (6, "dataset", "missing field"),
        (3, "dataset", "empty text"),
    ]
    files = [q[0] for q in quarantine_reasons(ev)]
    assert files == ["data/eval_final.json", "data/eval_final.json", "data/eval_humaneval_handpicked.json"]


def test_eval_prompt_file_must_be_a_list(tmp_path):
    (tmp_path / "eval_final.json").write_text('{"instruction": "x", "dataset": "oasst"}')
    src = SourceConfig(loader="crs_eval_prompts", path=str(tmp_path), files={"final": "eval_final.json"})
    with pytest.raises(SourceError, match=r"eval_final.json: expected a JSON list of prompts, got dict"):
        get_loader("crs_eval_prompts")(src, None)
