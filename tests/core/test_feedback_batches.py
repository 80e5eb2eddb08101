"""Annotations -> loader-ready batches: the contract of each seed interface, quarantine, re-polls, several
annotators (docs/sources.md §1.1, §7.4, §8)."""

import json

import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.data.loaders.qa_feedback import PAIRS
from rlhf_core.feedback.batches import (
    Submitted,
    batch_dirs,
    collection_table,
    write_batch,
)
from rlhf_core.feedback.interfaces import build_items, split_qa_prompt

PROMPT = (
    "question: Who built the bridge? context: wikipage: Bridge text: Bridge\n\nThe bridge is old. "
    "It was built by Ann. | wikipage: Ann text: Ann\n\nAnn was an engineer."
)
ANSWER = "Bob built the bridge. The bridge is very very old indeed today."
TASK = load_config(task_config_path("qa_feedback"))


def fg_item():
    answers = {p: {"q1": (PROMPT, ANSWER if p == "a" else f"answer of {p}")} for p in "abcd"}
    return build_items("qa_human", "fg", answers, list("abcd"), None, 1)[0]


def span(rid, start, end, label, text=ANSWER):
    return {
        "id": rid,
        "from_name": "errors",
        "to_name": "answer",
        "type": "labels",
        "value": {
            "start": start,
            "end": end,
            "text": text[start:end],
            "labels": [label],
        },
    }


def evidence(rid, text):
    return {
        "id": rid,
        "from_name": "evidence",
        "to_name": "answer",
        "type": "textarea",
        "value": {"text": [text]},
    }


def textarea(name, text):
    return {
        "id": name,
        "from_name": name,
        "to_name": "answer",
        "type": "textarea",
        "value": {"text": [text]},
    }


def pairs(*choices):
    names = ["pair_1_2", "pair_1_3", "pair_1_4", "pair_2_3", "pair_2_4", "pair_3_4"]
    return [
        {
            "id": n,
            "from_name": n,
            "to_name": "answer_1",
            "type": "choices",
            "value": {"choices": [c]},
        }
        for n, c in zip(names, choices)
    ]


def ann(page, aid, who, item, result, at="2026-12-07T10:00:00"):
    return Submitted(page, aid, at, who, item, result)


GOOD_FG = [
    span("s1", 0, 3, "Inconsistent fact"),
    evidence("s1", "1:2"),
    span("s2", 22, 63, "Irrelevant"),
    textarea("missing_minor", "2:1"),
    textarea("corrected", "Ann built the bridge. The bridge is old."),
]


def test_items_carry_passages_answers_and_a_stable_id():
    item = fg_item()
    assert split_qa_prompt(PROMPT) == (
        "Who built the bridge?",
        [
            ["Bridge", "The bridge is old.", "It was built by Ann."],
            ["Ann", "Ann was an engineer."],
        ],
    )
    assert "[1:2] It was built by Ann." in item["passages_text"]
    assert item["item_id"] == fg_item()["item_id"] and item["answer_1"] == ANSWER
    answers = {p: {"q1": ("Say hi", f"hi from {p}"), "q2": ("Say bye", f"bye from {p}")} for p in "xyz"}
    for p in "xyz":  # no text but control characters and spaces: no item
        answers[p]["q3"] = ("Say nothing", "\x7f\r ")
    answers["x"]["q1"] = (
        "Say hi",
        "hi\r\n  from\x00 x ",
    )  # shown as stored: control characters out
    every = build_items("ranks", "crs_ranking", answers, ["x", "y", "z"], None, 7)
    assert [i["prompt_id"] for i in every] == ["q1", "q2"]
    assert "hi from x" in [every[0][f"response_{k}"] for k in (1, 2, 3)]
    ranked = build_items("ranks", "crs_ranking", answers, ["x", "y", "z"], 1, 7)
    assert len(ranked) == 1 and sorted(ranked[0]["keys"].values()) == ["x", "y", "z"]
    k0 = ranked[0]["keys"]["0"]
    assert ranked[0]["response_1"].endswith(f"from {k0}")  # the keys say who wrote each shown response


def test_a_fine_grained_annotation_and_a_comparison_become_one_feedback_example(
    tmp_path,
):
    item = fg_item()
    found = [
        ann("fg_fine_grained", 1, "ann@x", item, GOOD_FG),
        ann(
            "fg_comparison",
            2,
            "ann@x",
            item,
            pairs("Answer 1", "Answer 3", "Equal", "Answer 2", "Answer 4", "Answer 3"),
        ),
    ]
    batch, counts = write_batch(tmp_path, "fg", "train", found)
    assert counts == {
        "annotations": 2,
        "new_records": 1,
        "new_quarantined": 0,
        "pending": 0,
    }
    example = json.loads((batch / "train_feedback.json").read_text())[0]
    assert example["feedback"]["errors"] == [
        {
            "error type": "Wrong-Grounding",
            "explanation": "[[1, [2]]]",
            "start": 0,
            "end": 3,
        },
        {"error type": "Irrelevant", "explanation": "", "start": 22, "end": 63},
    ]
    assert example["feedback"]["missing-info"] == [
        {"error type": "Missing-Minor-Auxiliary", "passage_id": 2, "sentence_id": [1]}
    ]
    assert example["preference"] == [1, 2, 0, 1, 2, 1]
    result, meta = collection_table(tmp_path, "fg", TASK)
    row = result.kept.iloc[0]
    assert (len(result.kept), row["id"], row["corrected"]) == (
        1,
        f"{item['item_id']}/ann@x",
        "Ann built the bridge. The bridge is old.",
    )
    assert meta["annotations_used"] == sorted(a.ref for a in found)
    # polling the same annotations again writes nothing
    assert write_batch(tmp_path, "fg", "train", found)[0] is None and len(batch_dirs(tmp_path)) == 1


@pytest.mark.parametrize(
    "result, reason",
    [
        (
            [span("a", 0, 21, "Irrelevant"), span("b", 14, 21, "Unverifiable")],
            "overlapping spans",
        ),
        ([span("a", 40, 90, "Irrelevant")], "outside the answer"),
        ([span("a", 0, 3, "Toxic")], "is not one of"),
        (
            [span("a", 0, 3, "Inconsistent fact"), evidence("a", "3:1")],
            "passage 3 does not exist",
        ),
        (
            [span("a", 0, 3, "Inconsistent fact"), evidence("a", "1:7")],
            "sentence(s) [7] do not exist",
        ),
        ([span("a", 0, 3, "Inconsistent fact")], "without evidence ids"),
        ([textarea("missing_answer", "2:5")], "sentence(s) [5] do not exist"),
        ([span("a", 1, 3, "Irrelevant")], "cuts a word"),
    ],
)
def test_malformed_fine_grained_annotations_are_quarantined_with_their_reason(tmp_path, result, reason):
    item = fg_item()
    found = [
        ann("fg_fine_grained", 5, "bad@x", item, result),
        ann("fg_fine_grained", 6, "good@x", item, GOOD_FG),
    ]
    _, counts = write_batch(tmp_path, "fg", "train", found)
    assert (counts["new_records"], counts["new_quarantined"]) == (1, 1)
    table, _ = collection_table(tmp_path, "fg", TASK)
    (q,) = table.quarantined.to_dict("records")
    assert reason in q["reason"] and "bad@x" in q["reason"] and item["item_id"] in q["reason"]
    assert table.counts()["kept_rows"] == 1 and table.counts()["quarantined_rows"] == 1


def test_a_comparison_waits_for_its_annotators_spans_and_an_edit_is_written_again(
    tmp_path,
):
    item = fg_item()
    cmp = ann("fg_comparison", 2, "ann@x", item, pairs(*[f"Answer {i + 1}" for i, j in PAIRS]))
    assert write_batch(tmp_path, "fg", "train", [cmp])[1]["pending"] == 1 and not batch_dirs(tmp_path)
    fine = ann("fg_fine_grained", 1, "ann@x", item, GOOD_FG)
    write_batch(tmp_path, "fg", "train", [cmp, fine])
    edited = ann("fg_fine_grained", 1, "ann@x", item, GOOD_FG[2:], at="2026-12-07T11:00:00")
    _, counts = write_batch(tmp_path, "fg", "train", [cmp, edited])
    assert counts["new_records"] == 1 and len(batch_dirs(tmp_path)) == 2
    table, _ = collection_table(tmp_path, "fg", TASK)
    assert len(table.kept) == 1 and table.dropped == {"replaced_by_a_later_annotation": 1}
    assert [e["error type"] for e in json.loads(table.kept.iloc[0]["errors"])] == ["Irrelevant"]
    assert list(table.kept.iloc[0]["preference"]) == [1] * 6


def rank(item, **ranks):
    by_model = {m: k for k, m in item["keys"].items()}
    return [
        {
            "id": f"r{m}",
            "from_name": f"rank_{int(by_model[m]) + 1}",
            "to_name": "x",
            "type": "choices",
            "value": {"choices": [str(r)]},
        }
        for m, r in ranks.items()
    ]


def test_rankings_of_several_annotators_merge_and_bad_ones_are_quarantined(tmp_path):
    answers = {p: {"q1": ("Say hi", f"hi from {p}")} for p in ("rank", "abs", "crs")}
    item = build_items("ranks", "crs_ranking", answers, ["rank", "abs", "crs"], None, 90)[0]
    found = [
        ann("crs_ranking", 1, "u1", item, rank(item, abs=1, rank=2, crs=3)),
        ann("crs_ranking", 2, "u2", item, rank(item, abs=1, crs=2, rank=3)),
        ann("crs_ranking", 3, "u3", item, rank(item, abs=1, crs=1, rank=3)),  # a shared rank
        ann("crs_ranking", 4, "u4", item, rank(item, abs=1, crs=2)),
    ]  # a model left out
    _, counts = write_batch(tmp_path, "crs_ranking", "train", found)
    assert (counts["new_records"], counts["new_quarantined"]) == (2, 2)
    table, _ = collection_table(tmp_path, "crs_ranking", TASK)
    row = table.kept.iloc[0]
    # u1 and u2 agree abs first; rank vs crs 1-1 (margin 0): alphabetical, crs before rank
    assert list(row["ranking"]) == ["abs", "crs", "rank"]
    assert list(row["completions"]) == ["hi from abs", "hi from crs", "hi from rank"]
    assert table.dropped == {"merged_into_the_item_ranking": 1}
    reasons = sorted(table.quarantined["reason"])
    assert "u3" in reasons[0] and "two responses one rank" in reasons[0]
    assert "u4" in reasons[1] and "not ranked: ['rank']" in reasons[1]
