"""Dense rewards: [FG] R1/R2 segments, the RM's input words, the verdict read at each separator,
and the weighted combination that drives fine-grained PPO.

The token classifiers are RoBERTa with no transformer layer, so each position's logits depend on
its own token only: the separator's embedding is set to point at one label and every other
token's at the other, which shows where the verdict is read.
"""

import pytest
import torch
from transformers import RobertaConfig, RobertaForTokenClassification

from rlhf_core.data.segmentation import reward_segments
from rlhf_core.rewards.base import build_scorer
from rlhf_core.rewards.dense import DenseReward, DenseTerm
from tests.conftest import roberta_tokenizer

LABELS = ["Ignore", "NF-ERR", "O"]  # [FG]'s sorted label list for R1
TEXT = "Zorbal is red.  He lives in Quarn, which is nice, and he eats figs and bread daily! ok "


def token_rm(path, sep_label: str | None) -> str:
    """A token classifier that says ``sep_label`` at ``</s>`` and the other label elsewhere (None: ties)."""
    tok = roberta_tokenizer()
    cfg = RobertaConfig(
        vocab_size=len(tok),
        hidden_size=8,
        num_hidden_layers=0,
        num_attention_heads=2,
        intermediate_size=8,
        max_position_embeddings=130,
        type_vocab_size=1,
        pad_token_id=1,
        hidden_dropout_prob=0.0,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = RobertaForTokenClassification(cfg)
    pattern = torch.tensor([1.0, -1.0] * 4)
    with torch.no_grad():
        model.roberta.embeddings.position_embeddings.weight.zero_()
        model.roberta.embeddings.token_type_embeddings.weight.zero_()
        model.roberta.embeddings.word_embeddings.weight[:] = -pattern
        model.roberta.embeddings.word_embeddings.weight[tok.convert_tokens_to_ids("</s>")] = pattern
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        if sep_label is not None:
            other = {"O": "NF-ERR", "NF-ERR": "O"}[sep_label]
            model.classifier.weight[LABELS.index(sep_label)] = pattern
            model.classifier.weight[LABELS.index(other)] = -pattern
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_segments_end_where_the_seed_puts_them():
    # sentence ends: after "red." (14), "daily!" (83) and "ok" (86); each segment starts where the last ended
    sentences = reward_segments(TEXT, "sentence")
    assert [end for _, end in sentences] == [14, 83, 86]
    assert [t.split() for t, _ in sentences][2] == ["ok"]
    # sub-sentences start at words: the comma after "Quarn," comes 4 words into its sentence (< 5, and
    # the start is the sentence's first word: no split); after "nice," (7 words in, 7 words follow,
    # 7 + 5 < 14) the sentence splits at "and he" (character 50); the text's end closes the last one
    subs = reward_segments(TEXT, "subsentence")
    second = TEXT.index("and he")
    assert [end for _, end in subs] == [16, second, 84, 87]
    assert subs[1][0] == "He lives in Quarn, which is nice, "
    assert reward_segments("  \n", "sentence") == []
    with pytest.raises(ValueError, match="unknown segmentation unit"):
        reward_segments(TEXT, "paragraph")


def test_verdict_is_read_at_each_separator(tmp_path):
    good = build_scorer(
        "fg_segments",
        model=token_rm(tmp_path / "good", sep_label="O"),
        unit="sentence",
        error_label="NF-ERR",
        positive_reward=0.3,
        negative_reward=-0.3,
    )
    bad = build_scorer(
        "fg_segments",
        model=token_rm(tmp_path / "bad", sep_label="NF-ERR"),
        unit="sentence",
        error_label="NF-ERR",
        positive_reward=0.3,
        negative_reward=-0.3,
    )
    prompts, completions = ["question: what? context: x"] * 2, [TEXT, "One. Two."]
    assert good.segment_rewards(prompts, completions) == [[(14, 0.3), (83, 0.3), (86, 0.3)], [(4, 0.3), (9, 0.3)]]
    assert bad.segment_rewards(prompts, completions) == [[(14, -0.3), (83, -0.3), (86, -0.3)], [(4, -0.3), (9, -0.3)]]
    assert good(prompts, completions) == pytest.approx([0.9, 0.6])
    assert bad(["q"], [""]) == [0.0]  # no segment, no reward


def test_a_tie_counts_as_an_error(tmp_path):
    path = token_rm(tmp_path / "tie", sep_label=None)
    scorer = build_scorer("fg_segments", model=path, unit="subsentence", error_label="NF-ERR")
    assert scorer.segment_rewards(["q"], [TEXT]) == [[(16, -1.0), (TEXT.index("and he"), -1.0), (84, -1.0), (87, -1.0)]]
    with pytest.raises(ValueError, match="labels \\['F-ERR'\\] not among"):
        build_scorer("fg_segments", model=path, unit="sentence", error_label="F-ERR")


def test_input_words_and_truncated_segments(tmp_path):
    scorer = build_scorer(
        "fg_segments",
        model=token_rm(tmp_path / "rm", sep_label="O"),
        unit="sentence",
        error_label="NF-ERR",
        question_only=True,
        max_length=24,
    )
    words = scorer.model_words("question: who is it? context: wikipage: X text: Y", ["A b. ", "C."])
    assert words == ["question:", "who", "is", "it?", "answer:", "</s>", "A", "b.", "</s>", "C."]
    # 24 tokens keep the first separator only: the second segment has no verdict and no reward
    long = "Aaaa bbbb cccc dddd. Eeee."
    result = scorer.score_with_stats(["question: q"], [long])
    assert scorer.segment_rewards(["question: q"], [long]) == [[(20, 1.0)]]
    assert result.scores == [1.0] and result.truncated == [True]


def test_dense_reward_weights_components_and_puts_sequence_scores_last(tmp_path):
    r1 = build_scorer(
        "fg_segments", model=token_rm(tmp_path / "rm", sep_label="O"), unit="sentence", error_label="NF-ERR"
    )
    length = build_scorer("length")
    dense = DenseReward(
        {"relevance": r1, "length": length, "unused": length},
        {"relevance": DenseTerm(0.3), "length": DenseTerm(2.0, mean=1.0, std=4.0, bias=0.5)},
    )
    # "One. Two three." has 2 sentences (+0.3 each) and 3 words: 2 * (3 - 1) / 4 + 0.5 = 1.5
    assert dense(["q"], ["One. Two three."]) == [
        [(4, pytest.approx(0.3)), (15, pytest.approx(0.3)), (None, pytest.approx(1.5))]
    ]
    with pytest.raises(KeyError, match="no scorer for dense reward component"):
        DenseReward({"length": length}, {"completeness": DenseTerm()})
    with pytest.raises(ValueError, match="std must be positive"):
        DenseTerm(std=0.0)


def test_sentence_delta_rewards_each_sentence_with_the_change_it_makes():
    delta = build_scorer("sentence_delta", base="length")  # the base scores a prefix by its word count
    # prefixes "One two." (2 words) and "One two. Three four five." (5 words)
    assert delta.segment_rewards(["q", "q"], ["One two. Three four five.", " "]) == [[(8, 2.0), (25, 3.0)], []]
    assert delta(["q"], ["One two. Three four five."]) == [5.0]  # as a plain scorer: the base on the whole text
