"""[FG] qa-feedback: loader validation, the R1 / R2 / holistic / R3 RM files and the train_1k SFT
rows (docs/sources.md §1.1, §2.1, §2.2, §4)."""

from __future__ import annotations

import pytest
from data_helpers import build_task, load_task, quarantine_reasons

from rlhf_core.config import SourceConfig
from rlhf_core.data.quarantine import SourceError
from rlhf_core.data.registry import get_loader
from rlhf_core.data.schemas import PROMPT_COMPLETION, require_columns
from rlhf_core.data.segmentation import segment_words, split_sentences, subsentence_starts, subsentences

FIXTURE = ["sources.qa_feedback.path=data/fixtures/qa_feedback", "sources.qa_sft.path=data/fixtures/qa_feedback"]


@pytest.fixture(scope="module")
def res():
    return build_task(load_task("qa_feedback", FIXTURE))


def segment_labels(row) -> list[str]:
    """Labels on the ``</s>`` markers of the answer part."""
    text, tags = list(row.text), list(row.feedback_tags)
    ans = text.index("answer:")
    return [t for w, t in zip(text[ans + 1 :], tags[ans + 1 :]) if w == "</s>"]


def by_key(df) -> dict:
    return {(r.split, r.id): r for r in df.itertuples(index=False)}


# ----------------------------------------------------------------------------- segmentation


def test_sentences_and_subsentence_rule():
    assert split_sentences(' It won. "Yes!" he said?  ok... fine ') == [
        "It won.",
        '"Yes!"',
        "he said?",
        "ok...",
        "fine",
    ]
    words = "Yes, it is true that the band formed in 1990, then split, and reformed in the year 2005 with new members, fans said.".split()
    starts = subsentence_starts(words)
    # 'Yes,' is too close to the start (not marked); '1990,' marks 10, then 'split,' moves it to 12;
    # 'members,' has fewer than 5 words after it.
    assert [i for i, s in enumerate(starts) if s] == [0, 12]
    words, starts = segment_words("A b. C d e.", "sentence")
    assert words == ["A", "b.", "C", "d", "e."] and starts == [True, False, True, False, False]
    assert subsentences("x  y, z.") == ["x y, z."]


# ----------------------------------------------------------------------------- loader


def test_loader_keeps_valid_examples_and_quarantines_bad_rows(res):
    fb = res["qa_feedback"]
    assert fb.counts() == {"input_rows": 11, "kept_rows": 5, "quarantined_rows": 6}
    assert sorted(by_key(fb.kept)) == [("dev", "0"), ("train", "0"), ("train", "1"), ("train", "7"), ("train", "8")]
    assert quarantine_reasons(fb) == [
        (
            "qa_feedback/train_feedback.json",
            3,
            "feedback.errors[0].start/end",
            "span [14, 20) 'apital' is not on word boundaries",
        ),
        ("qa_feedback/train_feedback.json", 4, "feedback.errors[0].error type", "unknown error type 'Typo'"),
        ("qa_feedback/train_feedback.json", 5, "prediction 3", "missing field"),
        ("qa_feedback/train_feedback.json", 6, "question", "expected a string, got int"),
        ("qa_feedback/train_feedback.json", 7, "prediction 2", "empty text"),
        ("qa_feedback/dev_feedback.json", 2, "preference", "values must be 0, 1 or 2, got [0, 1, 2, 3, 0, 0]"),
    ]


def test_unusable_files_name_the_file(tmp_path):
    load = get_loader("qa_feedback")
    (tmp_path / "train_feedback.json").write_text('[{"question": "q",\n "passages": [}]')
    src = SourceConfig(loader="qa_feedback", path=str(tmp_path), files={"train": "train_feedback.json"})
    with pytest.raises(SourceError, match=r"train_feedback.json: not valid JSON \(line 2, column 15\)"):
        load(src, None)
    missing = SourceConfig(loader="qa_feedback", path=str(tmp_path), files={"dev": "dev_feedback.json"})
    with pytest.raises(SourceError, match=r"dev_feedback.json: no such file"):
        load(missing, None)
    (tmp_path / "obj.json").write_text('{"question": "q"}')
    with pytest.raises(SourceError, match=r"obj.json: expected a JSON list of examples, got dict"):
        load(SourceConfig(loader="qa_feedback", path=str(tmp_path), files={"train": "obj.json"}), None)


# ----------------------------------------------------------------------------- R1 / R2


def test_r1_subsentence_nf_err_labels(res):
    r1 = res["rel_token_labels"]
    assert r1.counts() == {"input_rows": 5, "kept_rows": 4, "quarantined_rows": 1}
    rows = by_key(r1.kept)
    # train 0: the long Irrelevant span marks the 2nd sub-sentence of sentence 2; the 3-word
    # Redundant span is too short; the Wrong-Grounding span is not an NF error.
    assert segment_labels(rows["train", "0"]) == ["O", "O", "NF-ERR", "O"]
    assert segment_labels(rows["train", "1"]) == ["NF-ERR"]
    assert segment_labels(rows["dev", "0"]) == ["O", "O"]
    assert list(rows["train", "8"].text) == [
        "question:",
        "When",
        "did",
        "the",
        "band",
        "form?",
        "answer:",
        "</s>",
        "Yes,",
        "it",
        "is",
        "true",
        "that",
        "the",
        "band",
        "formed",
        "in",
        "1990,",
        "then",
        "split,",
        "</s>",
        "and",
        "reformed",
        "in",
        "the",
        "year",
        "2005",
        "with",
        "new",
        "members,",
        "fans",
        "said.",
    ]
    assert list(rows["train", "8"].feedback_tags) == ["Ignore"] * 7 + ["O"] + ["Ignore"] * 12 + ["O"] + ["Ignore"] * 11
    assert quarantine_reasons(r1) == [
        (
            "fg_token_labels",
            3,
            "feedback.errors",
            "train example 7: answer word 6 'and' carries several labels ['F-ERR', 'none']",
        )
    ]


def test_r2_sentence_f_err_labels_with_context(res):
    r2 = res["fact_token_labels"]
    assert r2.counts() == {"input_rows": 5, "kept_rows": 3, "quarantined_rows": 1, "dropped_all_labels_ignore": 1}
    rows = by_key(r2.kept)
    assert segment_labels(rows["train", "0"]) == ["O", "Ignore", "F-ERR"]  # NF-ERR sentence -> Ignore
    assert segment_labels(rows["train", "8"]) == ["O"]
    assert segment_labels(rows["dev", "0"]) == ["O", "F-ERR"]
    text = list(rows["dev", "0"].text)
    assert text[: text.index("answer:")] == [
        "question:",
        "How",
        "high",
        "is",
        "Mount",
        "Everest?",
        "context:",
        "wikipage:",
        "Mount",
        "Everest",
        "text:",
        "Mount",
        "Everest",
        "Mount",
        "Everest",
        "is",
        "8849",
        "metres",
        "high.",
        "It",
        "lies",
        "on",
        "the",
        "border",
        "of",
        "Nepal",
        "and",
        "China.",
    ]
    assert set(rows["dev", "0"].feedback_tags[: text.index("answer:") + 1]) == {"Ignore"}


# ----------------------------------------------------------------------------- preferences


def test_holistic_pairs(res):
    pairs = res["holistic_pairs"]
    assert pairs.counts() == {"input_rows": 30, "kept_rows": 19, "quarantined_rows": 0, "dropped_tie": 11}
    rows = by_key(pairs.kept)
    assert sorted(k[1] for k in rows if k[1].startswith("0-") and k[0] == "train") == [
        "0-1v2",
        "0-1v3",
        "0-2v3",
        "0-2v4",
    ]
    fb = by_key(res["qa_feedback"].kept)["train", "0"].predictions
    assert (rows["train", "0-1v2"].chosen, rows["train", "0-1v2"].rejected) == (fb[0], fb[1])  # preference 1
    assert (rows["train", "0-1v3"].chosen, rows["train", "0-1v3"].rejected) == (fb[2], fb[0])  # preference 2
    assert rows["dev", "0-1v3"].prompt == (
        "question: How high is Mount Everest? context: wikipage: Mount Everest text: Mount Everest "
        "Mount Everest is 8849 metres high. It lies on the border of Nepal and China. answer: "
    )


def test_completeness_preferences(res):
    comp = res["comp_feedback"]
    assert comp.counts() == {"input_rows": 5, "kept_rows": 4, "quarantined_rows": 0, "dropped_no_relevant_info": 1}
    prefs = {k: list(r.preference) for k, r in by_key(comp.kept).items()}
    # train 0: the minor-only sentence (Hugo Award) is removed; coverage p1 .5, p2 1, p3 0, p4 .5.
    assert prefs["train", "0"] == [2, 1, 0, 1, 1, 2]
    assert prefs["train", "8"] == [2, 2, 2, 0, 2, 2]  # coverage 0, .5, .5, 1
    assert prefs["dev", "0"] == [0, 1, 2, 1, 2, 2]  # coverage .5, .5, 0, 1
    assert prefs["train", "7"] == [0] * 6
    assert res["comp_pairs"].counts() == {"input_rows": 24, "kept_rows": 15, "quarantined_rows": 0, "dropped_tie": 9}


# ----------------------------------------------------------------------------- SFT (train_1k)


def test_sft_rows_are_text_to_first_answer(res):
    sft = res["qa_sft"]
    assert sft.counts() == {"input_rows": 11, "kept_rows": 4, "quarantined_rows": 4, "dropped_no_text_or_answer": 3}
    require_columns(sft.kept, PROMPT_COMPLETION, "qa_sft")
    rows = by_key(sft.kept)
    assert sorted(rows) == [("train", "0"), ("train", "1"), ("val", "0"), ("val", "1")]
    dune = rows["train", "0"]
    # the policy input is `text` verbatim: passages joined by ' | ', content keeps its "title\n\n"
    assert dune.prompt == (
        "question: Who wrote the novel Dune? context: wikipage: Dune (novel) text: Dune (novel)\n\n"
        "Dune is a 1965 science fiction novel by American author Frank Herbert. | wikipage: Frank Herbert "
        "text: Frank Herbert\n\nFranklin Patrick Herbert Jr. was an American science fiction author best known for Dune."
    )
    assert dune.completion == "Frank Herbert wrote the novel Dune, published in 1965."
    assert list(dune.references) == [dune.completion, "Dune was written by Frank Herbert."]
    assert rows["val", "1"].completion == "The Amazon river ends in the Atlantic Ocean."
    # rows 3, 4 and 9 (answer [], text "", text null) are the seed's skipped items, not errors
    assert quarantine_reasons(sft) == [
        ("qa_feedback/train_1k.json", 5, "answer", "expected a list, got str"),
        ("qa_feedback/train_1k.json", 6, "text", "missing field"),
        ("qa_feedback/train_1k.json", 7, "answer[1]", "empty text"),
        ("qa_feedback/train_1k.json", 8, "answer[0]", "expected a string, got int"),
    ]


def test_sft_file_must_be_a_list(tmp_path):
    (tmp_path / "train_1k.json").write_text('{"question": "q", "text": "t", "answer": ["a"]}')
    src = SourceConfig(loader="qa_sft", path=str(tmp_path), files={"train": "train_1k.json"})
    with pytest.raises(SourceError, match=r"train_1k.json: expected a JSON list of examples, got dict"):
        get_loader("qa_sft")(src, None)
