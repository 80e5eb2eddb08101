"""Every registered evaluation metric against values worked out by hand, and the registry's naming rules."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from rlhf_core.config import MetricSpec
from rlhf_core.eval.evaluate import (
    aggregate_table,
    best_and_worst,
    clean_response,
    flat_summary,
    groups,
)
from rlhf_core.eval.measures.reference import WORDNET_DIR, sent_tokenize, word_tokenize
from rlhf_core.eval.measures.text import extractive_fragments
from rlhf_core.eval.registry import (
    METRICS,
    EvalGroup,
    build_metric,
    compute_metrics,
)


def group(**columns) -> EvalGroup:
    return EvalGroup(pd.DataFrame(columns), {})


def test_corpus_distinct_lowercases_and_counts_ngrams_over_all_responses():
    # words: [a b a] [A b c]; unigrams a,b,a,a,b,c -> {a,b,c} 3/6; bigrams ab ba | ab bc -> {ab,ba,bc} 3/4;
    # trigrams aba | abc -> 2/2
    values = build_metric("distinct", n=[1, 2, 3])(group(prompt=["p", "q"], completion=["a b a", "A b c"]))
    assert values == {"-1": 0.5, "-2": 0.75, "-3": 1.0}


def test_per_prompt_distinct_divides_by_words_keeps_case_and_averages_prompts():
    # prompt p: "a b" + "a c" -> unigrams {a,b,c}/4 words = 0.75, bigrams {ab, ac}/4 = 0.5
    # prompt q: "X X" -> unigrams {X}/2 = 0.5, bigrams {XX}/2 = 0.5; means 0.625 and 0.5
    rows = group(prompt=["p", "p", "q"], completion=["a b", "a c", "X X"])
    assert build_metric("distinct", n=[1, 2], per="prompt")(rows) == {"-1": 0.625, "-2": 0.5}


def test_length_in_words_and_in_generated_tokens():
    rows = group(completion=["one two three", "four"], completion_tokens=[5, 2])
    assert build_metric("length")(rows) == {"": 2.0}
    assert build_metric("length", unit="tokens")(rows) == {"": 3.5}


def test_extractive_fragments_keep_the_seed_quirk():
    knowledge = "the cat sat on the mat".split()
    # "the cat sat" is shared (3 words); "dog" and a lone "mat" are single words and never count
    assert extractive_fragments("the cat sat by a mat dog".split(), knowledge) == [["the", "cat", "sat"]]
    # at "the": first match "the cat" (len 2: 1 > 0 kept); the later "the mat" (len 2: 1 > 2? no) is not
    assert extractive_fragments("the cat".split(), knowledge) == [["the", "cat"]]
    # a match one word longer than the kept one does not replace it: "on the" (2) then "on the mat" needs 3-1 > 2
    assert extractive_fragments("on the mat".split(), "on the x on the mat".split()) == [["on", "the"]]


def test_grusky_coverage_and_density_with_their_std():
    rows = group(completion=["the cat sat by a mat", ""], knowledge=["the cat sat on the mat", "anything"])
    # row 1: one fragment of 3 in 6 words: coverage 0.5, density 9/6 = 1.5; the empty row: 0 and 0
    values = build_metric("grusky")(rows)
    assert values == {"coverage": 0.25, "coverage_std": 0.25, "density": 0.75, "density_std": 0.75}
    # the knowledge read from a JSON column, as the dialog tables keep it
    meta = group(completion=["the cat sat by a mat"], meta=['{"knowledge": "the cat sat on the mat"}'])
    assert build_metric("grusky", against="meta.knowledge")(meta)["coverage"] == 0.5


def test_sentence_and_word_tokenizers_follow_nltk_english_punkt():
    # "Dr." is an abbreviation of the English model: an untrained Punkt would split after it
    assert sent_tokenize("Dr. Smith went home. He was tired!") == ["Dr. Smith went home.", "He was tired!"]
    assert word_tokenize("It's 8,849 m tall.") == ["It", "'s", "8,849", "m", "tall", "."]


def test_rouge_lsum_is_the_best_reference_f1_times_100():
    # prediction "the cat sat" vs "the cat sat down": LCS 3, P 1, R 3/4 -> F 6/7; vs "a dog": 0
    rows = group(completion=["the cat sat"], references=[["a dog", "the cat sat down"]])
    assert build_metric("rouge_lsum")(rows)[""] == pytest.approx(600 / 7)
    # stemming: "sitting cats" matches "sitting cat" fully; a plain-text reference column works too
    assert build_metric("rouge_lsum", references="reference")(group(completion=["cats"], reference=["cat"])) == {
        "": 100.0
    }


@pytest.mark.skipif(
    not Path(WORDNET_DIR, "index.sense").exists(),
    reason="WordNet 3.0 (Debian wordnet-base and wordnet-sense-index, installed by make setup) is missing",
)
def test_meteor_over_every_prediction(tmp_path, monkeypatch):
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path))
    # identical 6-word sentences: 6 unigram matches in 1 chunk: P = R = 1, Fmean = 1,
    # penalty 0.5 * (1/6)^3, METEOR = 1 - 0.5/216; the second pair shares nothing: 0. Mean over both rows.
    rows = group(completion=["the cat sat on the mat", "xyz"], reference=["the cat sat on the mat", "abc"])
    value = build_metric("meteor")(rows)[""]
    assert value == pytest.approx((1 - 0.5 / 216) / 2)


def test_score_means_mixes_and_standardised_scores():
    rows = group(ranking=[1.0, 3.0], absolute=[2.0, 0.0], completeness=[1.0, 5.0])
    assert build_metric("mean", column="ranking", std=True)(rows) == {"": 2.0, "_std": 1.0}
    # 0.25 * rank + 0.75 * abs: 1.75 and 0.75 -> mean 1.25, std 0.5
    assert build_metric("mix", weights={"ranking": 0.25, "absolute": 0.75})(rows) == {"": 1.25, "_std": 0.5}
    assert build_metric("mix", weights={"ranking": 1.0}, bias=-1.0)(rows)[""] == 1.0
    # (1 - 1) / 2 = 0, (5 - 1) / 2 = 2 -> 1
    assert build_metric("standardised", column="completeness", mean=1.0, std=2.0)(rows) == {"": 1.0}


class SegmentJudge:
    """A fine-grained component: one segment per word, correct unless the word is "bad"."""

    def segment_rewards(self, prompts, completions):
        return [[(i, -1.0 if w == "bad" else 1.0) for i, w in enumerate(c.split())] for c in completions]


def test_segment_ok_ratio_is_micro_averaged_over_segments():
    # 1 of 4 segments wrong in row 1, 1 of 1 in row 2: micro 3/5 (a macro average would be 0.375)
    rows = EvalGroup(pd.DataFrame({"prompt": ["p", "q"], "completion": ["a b c bad", "bad"]}), {"rel": SegmentJudge()})
    assert build_metric("segment_ok_ratio", component="rel")(rows) == {"": 0.6}
    with pytest.raises(KeyError, match="annotation.scorers"):
        build_metric("segment_ok_ratio", component="fact")(rows)


def test_segment_counts():
    rows = group(completion=["One. Two three.", "Only one"])
    assert build_metric("segments", unit="sentence")(rows) == {"": 1.5}


def test_toxicity_takes_the_max_per_prompt(monkeypatch):
    from rlhf_core.rewards import base

    class Lookup:  # a registered scorer whose toxicity is the number written in the sample
        name, version = "lookup", "1"

        def __call__(self, prompts, completions):
            return [float(c) for c in completions]

    monkeypatch.setitem(base.SCORERS._entries, "test_lookup", Lookup)
    # prompt p: max 0.7 (toxic); q: max 0.2 -> average max 0.45, probability 1/2
    rows = group(prompt=["p", "p", "q", "q"], completion=["0.1", "0.7", "0.2", "0.0"])
    assert build_metric("toxicity", scorer="test_lookup")(rows) == {
        "avg_max_toxicity": pytest.approx(0.45),
        "toxicity_probability": 0.5,
    }


def test_perplexity_is_exp_of_the_completion_nll_given_the_prompt(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from tests.conftest import gpt2_tokenizer

    tok = gpt2_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64)).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    prompt, completion = "hello there", " general"
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + tok(completion, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        logp = model(ids).logits.log_softmax(-1)[0, :-1].gather(-1, ids[0, 1:, None])[:, 0]
    expected = math.exp(-float(logp[len(p_ids) - 1 :].mean()))
    rows = group(prompt=[prompt], completion=[completion])
    assert build_metric("perplexity", model={"path": str(tmp_path)})(rows)[""] == pytest.approx(expected, rel=1e-5)
    # a sample past max_perplexity is an outlier and left out
    assert math.isnan(build_metric("perplexity", model={"path": str(tmp_path)}, max_perplexity=1.0)(rows)[""])


def test_compute_metrics_names_values_and_refuses_a_clash():
    rows = group(prompt=["p"], completion=["a b"], reward=[1.0])
    specs = {
        "dist": MetricSpec("distinct", {"n": [1]}),
        "avg": MetricSpec("mean", {"column": "reward", "std": True}),
        "len": MetricSpec("length"),
    }
    assert compute_metrics(specs, rows) == {"dist-1": 1.0, "avg": 1.0, "avg_std": 0.0, "len": 2.0}
    with pytest.raises(ValueError, match="already reports"):
        compute_metrics(
            {
                "a": MetricSpec("grusky", {"against": "completion"}),
                "b": MetricSpec("grusky", {"against": "completion"}),
            },
            rows,
        )
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        compute_metrics({"x": MetricSpec("nope")}, rows)
    assert {"distinct", "rouge_lsum", "meteor", "grusky", "toxicity", "perplexity"} <= set(METRICS.names())


def test_hha_response_cleaning():
    assert (
        clean_response(" Sure, here.\n\nHuman: thanks ###", ["\n Human:", "\nHuman:", "\n### Human"], ["###"])
        == "Sure, here."
    )
    assert clean_response("Answer ###", ["\nHuman:"], ["###"]) == "Answer"


def test_groups_score_the_references_once_per_prompt_and_flatten_as_the_lol_aggregator():
    rows = pd.DataFrame(
        {
            "id": ["1", "1", "2"],
            "split": ["test", "test", "val"],
            "sample": [0, 1, 0],
            "prompt": ["p", "p", "q"],
            "completion": ["g1", "g2", "g3"],
            "reference": ["r1", "r1", "r2"],
            "completion_tokens": [1, 1, 1],
        }
    )
    got = groups(rows, ["test", "val"], gold=True)
    assert [(s, g, r["completion"].tolist()) for s, g, r in got] == [
        ("test", "gen", ["g1", "g2"]),
        ("test", "gold", ["r1"]),
        ("val", "gen", ["g3"]),
        ("val", "gold", ["r2"]),
    ]
    flat = flat_summary([("test", "gen", {"reward": 1.0}), ("test", "gold", {"reward": 2.0})])
    assert flat == {"reward": 1.0, "test_gen reward": 1.0, "test_gold reward": 2.0}


def test_the_aggregate_table_is_laid_out_as_the_lol_aggregator():
    summaries = pd.DataFrame(
        [
            {
                "algorithm": "a_lol",
                "reward": 0.5,
                "test_gen reward": 0.5,
                "val_gen reward": 0.41234,
                "test_gold reward": 0.7,
                "val_gold reward": 0.6,
            }
        ]
    )
    table = aggregate_table(summaries, "comet", "gpt2", ["val", "test"])
    assert list(table.columns) == [
        "task_name",
        "baseline_model",
        "algorithm",
        "val_gen reward",
        "test_gen reward",
        "val_gold reward",
        "test_gold reward",
    ]
    assert table.iloc[0].tolist() == ["comet", "gpt2", "a_lol", 0.412, 0.5, 0.6, 0.7]


def test_best_and_worst_validation_points_are_the_first_highest_and_lowest():
    # Four points over two epochs; 0.6 is reached twice (the first is kept, as the seed's strict ">" does) and
    # 0.2 is the lowest.
    history = pd.DataFrame(
        {"epoch": [1, 1, 2, 2], "step": [8, 16, 8, 16], "reward": [0.4, 0.6, 0.2, 0.6], "p_valid_model": [1, 2, 3, 4]}
    )
    assert best_and_worst(history, "reward") == {
        "best e": 1,
        "best s": 16,
        "best V final_reward": 0.6,  # R under the seed's name
        "worst e": 2,
        "worst s": 8,
        "worst V final_reward": 0.2,
    }
    points = best_and_worst(history, "p_valid_model")
    assert (points["best e"], points["best s"], points["worst e"], points["worst s"]) == (2, 16, 1, 8)


def test_the_aggregate_table_has_the_seeds_validation_columns_with_a_metric():
    summaries = pd.DataFrame(
        [
            {
                "algorithm": "a_lol",
                **{"best e": 2, "best s": 16, "best V p_valid_model": 0.71234},
                **{"worst e": 1, "worst s": 8, "worst V p_valid_model": 0.2},
                "val_gen p_valid_model": 0.65,
                "test_gen p_valid_model": 0.6,
                "val_gold p_valid_model": 0.9,
                "test_gold p_valid_model": 0.8,
            },
            {  # the starting policy kept no validation history
                "algorithm": "sft",
                "val_gen p_valid_model": 0.5,
                "test_gen p_valid_model": 0.4,
                "val_gold p_valid_model": 0.9,
                "test_gold p_valid_model": 0.8,
            },
        ]
    )
    table = aggregate_table(summaries, "comet", "gpt2", ["val", "test"], "p_valid_model")
    assert list(table.columns) == [
        "task_name",
        "baseline_model",
        "algorithm",
        "best e",
        "best s",
        "best V p_valid_model",
        "worst e",
        "worst s",
        "worst V p_valid_model",
        "val_p_valid_model",
        "test_p_valid_model",
        "val_gen p_valid_model",
        "test_gen p_valid_model",
        "val_gold p_valid_model",
        "test_gold p_valid_model",
    ]
    assert table.iloc[0].tolist() == ["comet", "gpt2", "a_lol", 2, 16, 0.712, 1, 8, 0.2, 0.65, 0.6, 0.65, 0.6, 0.9, 0.8]
    assert table.iloc[1, 3:9].isna().all() and table.iloc[1]["val_p_valid_model"] == 0.5
    csv = table.to_csv(index=False, float_format="%.3f", na_rep="NA").splitlines()
    assert csv[1].startswith("comet,gpt2,a_lol,2,16,0.712,1,8,0.200,0.650,0.600,")  # whole epochs and steps
    assert csv[2].startswith("comet,gpt2,sft,NA,NA,NA,NA,NA,NA,0.500,0.400,")
