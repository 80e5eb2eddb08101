"""Each model scorer on a tiny random model of its real architecture, loaded from a saved directory.

For every scorer: the exact token ids the model receives, the output transform (recomputed here
from the raw model), batched == one-by-one, and truncation counting.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from safetensors.torch import load_file

from rlhf_core.rewards.base import build_scorer
from rlhf_core.rewards.comet_critic import critic_pair, parse_prompt
from rlhf_core.rewards.model_loading import model_source

EOS = "<|endoftext|>"
COMET_PROMPT = "<head> PersonX gives PersonY a gift </head> <relation> xWant </relation> [GEN] "
WOW_PROMPT = "Knowledge: the sky is blue" + EOS + "hi there" + EOS


class FedIds:
    """Records the input ids that reach the model's embedding table."""

    def __init__(self, model):
        self.calls: list[list[list[int]]] = []
        model.get_input_embeddings().register_forward_hook(lambda m, args, out: self.calls.append(args[0].tolist()))


def enc(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def test_fluency_reads_the_response_alone_and_returns_p_acceptable(roberta_classifier_dir):
    scorer = build_scorer("fluency", model=roberta_classifier_dir)
    fed = FedIds(scorer.model)
    (value,) = scorer(["ignored prompt"], ["the cat sat" + EOS])  # trailing EOS is stripped
    tok = scorer.tokenizer
    ids = [tok.cls_token_id] + enc(tok, "the cat sat") + [tok.sep_token_id]
    assert fed.calls == [[ids]]
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits
    assert value == pytest.approx(torch.softmax(logits, -1)[0, 1].item(), abs=1e-6)


def test_faithcritic_reads_knowledge_and_response_pair(roberta_classifier_dir):
    scorer = build_scorer("faithcritic", model=roberta_classifier_dir)
    fed = FedIds(scorer.model)
    (value,) = scorer([WOW_PROMPT], ["it is"])
    tok = scorer.tokenizer
    knowledge = " the sky is blue"  # "Knowledge:" dropped, leading space kept
    ids = [tok.cls_token_id] + enc(tok, knowledge) + [tok.sep_token_id] * 2 + enc(tok, "it is") + [tok.sep_token_id]
    assert fed.calls == [[ids]]
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits
    assert value == pytest.approx(torch.softmax(logits, -1)[0, 0].item(), abs=1e-6)
    assert scorer.invalid_reason("Knowledge: no separator", "x") is not None


def test_dialogrpt_reads_context_eos_response_and_returns_sigmoid(dialogrpt_dir):
    scorer = build_scorer("dialogrpt_updown", model=dialogrpt_dir)
    fed = FedIds(scorer.model)
    (value,) = scorer(["how are you" + EOS], ["fine thanks"])
    tok = scorer.tokenizer
    ids = enc(tok, "how are you") + [tok.eos_token_id] + enc(tok, "fine thanks")  # no trailing EOS
    assert fed.calls == [[ids]]
    with torch.no_grad():  # the stock GPT2ForSequenceClassification head on the same ids
        logit = scorer.model(input_ids=torch.tensor([ids])).logits[0, 0]
    assert value == pytest.approx(torch.sigmoid(logit).item(), abs=1e-6)


def test_dialogrpt_depth_history_only_drops_the_knowledge_turn(dialogrpt_dir):
    scorer = build_scorer("dialogrpt_depth", model=dialogrpt_dir, history_only=True)
    fed = FedIds(scorer.model)
    scorer([WOW_PROMPT], ["ok"])
    tok = scorer.tokenizer
    assert fed.calls == [[enc(tok, "hi there") + [tok.eos_token_id] + enc(tok, "ok")]]
    with pytest.raises(ValueError, match="row 0"):
        scorer(["no separator"], ["ok"])


def test_toxichat_loads_source_checkpoint_and_reads_safe_prob_at_final_eos(toxichat_dir):
    scorer = build_scorer("toxichat_safe", model=toxichat_dir)
    saved = load_file(f"{toxichat_dir}/model.safetensors")
    state = scorer.model.state_dict()
    assert saved.keys() - {"lm_head.weight"} <= state.keys()
    assert all(torch.equal(state[k], v) for k, v in saved.items() if k in state)  # every source weight landed
    fed = FedIds(scorer.model)
    (value,) = scorer(["you are" + EOS], ["nice"])
    tok = scorer.tokenizer
    ids = enc(tok, "you are") + [tok.eos_token_id] + enc(tok, "nice") + [tok.eos_token_id]
    assert fed.calls == [[ids]]
    with torch.no_grad():
        hidden = scorer.model.transformer(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
        expected = torch.softmax(scorer.model.off_classifier(hidden), -1)[0]
    assert value == pytest.approx(expected.item(), abs=1e-6)


def test_toxichat_cuts_long_threads_on_the_left_keeping_the_response(toxichat_dir):
    scorer = build_scorer("toxichat_safe", model=toxichat_dir)
    fed = FedIds(scorer.model)
    result = scorer.score_with_stats(["blah " * 100 + EOS], ["nice"])
    tok = scorer.tokenizer
    (fed_ids,) = fed.calls[0]
    assert result.truncated == [True] and len(fed_ids) == scorer.max_length
    tail = [tok.eos_token_id] + enc(tok, "nice") + [tok.eos_token_id]
    assert fed_ids[-len(tail) :] == tail


def test_comet_critic_pair_names_and_sigmoid_head(comet_critic_dir):
    scorer = build_scorer("comet_critic", model=comet_critic_dir, seed=7)
    fed = FedIds(scorer.model)
    (value,) = scorer([COMET_PROMPT], ["to thank PersonY"])
    first, second = critic_pair("PersonX gives PersonY a gift", "xWant", "to thank PersonY", seed=7)
    match = re.fullmatch(r"(\w+) gives (\w+) a gift", first)
    assert match and match.group(1) != match.group(2)
    x, y = match.groups()
    assert second == f"as a result, {x} wants to thank {y}"  # the relation phrase's PersonX named too
    tok = scorer.tokenizer
    ids = [tok.cls_token_id] + enc(tok, first) + [tok.sep_token_id] * 2 + enc(tok, second) + [tok.sep_token_id]
    assert fed.calls == [[ids]]
    with torch.no_grad():
        pooled = scorer.model(input_ids=torch.tensor([ids])).pooler_output
        expected = torch.sigmoid(scorer.head.out_proj(torch.nn.functional.gelu(scorer.head.dense(pooled))))
    assert value == pytest.approx(expected.item(), abs=1e-6)


def test_comet_names_are_deterministic_per_row_and_seed():
    a = critic_pair("PersonX eats", "xNeed", "food", seed=0)
    assert a == critic_pair("PersonX eats", "xNeed", "food", seed=0)
    assert {critic_pair("PersonX eats", "xNeed", "food", seed=s) for s in range(8)} != {a}
    assert "PersonX" not in "".join(a)
    mojibake = "PersonX said \u00e2\u20ac\u0153hi\u00e2\u20ac\u009d"  # UTF-8 curly quotes read as cp1252
    assert critic_pair(mojibake, "xAttr", "kind", 0)[0].endswith(' said "hi"')  # ftfy.fix_text repaired it
    assert parse_prompt(COMET_PROMPT) == ("PersonX gives PersonY a gift", "xWant")


@pytest.mark.parametrize(
    "name, fixture, extra, prompt",
    [
        ("fluency", "roberta_classifier_dir", {}, "p"),
        ("faithcritic", "roberta_classifier_dir", {}, WOW_PROMPT),
        ("dialogrpt_updown", "dialogrpt_dir", {}, "a question" + EOS),
        ("dialogrpt_depth", "dialogrpt_dir", {"history_only": True}, WOW_PROMPT),
        ("toxichat_safe", "toxichat_dir", {}, "a question" + EOS),
        ("comet_critic", "comet_critic_dir", {}, COMET_PROMPT),
    ],
)
def test_batched_scores_equal_one_by_one_in_input_order(name, fixture, extra, prompt, request):
    scorer = build_scorer(name, model=request.getfixturevalue(fixture), max_batch_tokens=64, **extra)
    completions = ["yes", "the answer is in the river", "no way", "a " * 12 + "long one", "ok then"]
    prompts = [prompt] * len(completions)
    batched = scorer(prompts, completions)
    single = [scorer([p], [c])[0] for p, c in zip(prompts, completions)]
    assert batched == pytest.approx(single, abs=1e-5)
    assert all(0.0 < v < 1.0 and math.isfinite(v) for v in batched)
    assert len(set(round(v, 6) for v in batched)) > 1  # the model really looked at the text


def test_truncation_is_counted_and_flagged(roberta_classifier_dir):
    scorer = build_scorer("fluency", model=roberta_classifier_dir)
    assert scorer.max_length == 128  # capped by the tiny model's position table
    result = scorer.score_with_stats(["p"] * 3, ["short", "word " * 200, "also short"])
    assert result.truncated == [False, True, False]
    assert all(math.isfinite(v) for v in result.scores)


def test_hub_id_without_pinned_revision_is_refused():
    with pytest.raises(ValueError, match="pinned"):
        model_source("microsoft/DialogRPT-updown", None)
    with pytest.raises(ValueError, match="pinned"):
        build_scorer("fluency")


def test_rm_logit_reads_prompt_plus_response_and_returns_the_raw_logit(dialogrpt_dir):
    scorer = build_scorer("rm_logit", model=dialogrpt_dir, max_batch_tokens=64)
    fed = FedIds(scorer.model)
    (value,) = scorer(["Q: where? A:"], [" in the river" + EOS])
    ids = enc(scorer.tokenizer, "Q: where? A: in the river")
    assert fed.calls == [[ids]]
    with torch.no_grad():
        assert value == pytest.approx(scorer.model(input_ids=torch.tensor([ids])).logits[0, 0].item(), abs=1e-6)
    completions = [" yes", " the answer is in the river", " no", " a long" * 9]
    batched = scorer(["Q: where? A:"] * 4, completions)
    assert batched == pytest.approx([scorer(["Q: where? A:"], [c])[0] for c in completions], abs=1e-5)


def test_rm_logit_needs_a_model():
    with pytest.raises(ValueError, match="no model given"):
        build_scorer("rm_logit")
