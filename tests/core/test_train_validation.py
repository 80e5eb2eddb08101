"""[LoL] validation while the offline family trains (docs/sources.md §6.2): its points in each epoch, what the
history records there, and that sampling the policy leaves the training itself unchanged."""

import torch
from engine_worker import ROWS, TRAIN, assert_same_weights, tiny_lm

from rlhf_core.config import GenerationConfig, PolicyConfig
from rlhf_core.config.rl import ValidationConfig
from rlhf_core.eval.generate import generate
from rlhf_core.train.offline import train_offline
from rlhf_core.train.validation import Validation, validation_history

VAL_PROMPTS = ["Question x: what is the x?", "Question y: what is the y?"]


def test_points_follow_the_seeds_val_steps_within_each_epoch():
    # 10 steps an epoch, 3 validations: every int(10 / 3) = 3 steps, so steps 3, 6, 9 of each epoch (not 10).
    v = Validation(per_epoch=3, epoch_steps=10, score=lambda model: {})
    assert [s for s in range(1, 21) if v.due(s)] == [3, 6, 9, 13, 16, 19]
    assert v.point(13) == (2, 3)
    # More validations than steps: every step (the seed would divide by zero).
    assert [s for s in range(1, 5) if Validation(4, 2, lambda model: {}).due(s)] == [1, 2, 3, 4]


def _nll_of_val(model, tok) -> dict[str, float]:
    """A score that depends on the weights: the mean token NLL of the val prompts."""
    enc = tok(VAL_PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc, labels=enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100))
    return {"nll": float(out.loss)}


def test_the_history_holds_each_points_score_of_the_weights_at_that_point(tmp_path):
    # 12 rows in batches of 4: 3 steps an epoch, 2 epochs; one validation an epoch, at its 3rd step.
    model, tok = tiny_lm()
    policy = PolicyConfig(["a_lol"], data="rows", train=TRAIN, validation=ValidationConfig(per_epoch=1))
    result = train_offline(model, tok, ROWS, "a_lol", TRAIN, tmp_path, policy, score=lambda m: _nll_of_val(m, tok))
    history = validation_history(result.history)
    assert [(h["epoch"], h["step"]) for h in history] == [(1, 3), (2, 3)]
    assert [h["step"] for h in result.history if "validation" in h] == [3, 6]
    # The last point is the last step: its score is the trained policy's.
    assert history[-1]["nll"] == _nll_of_val(result.model, tok)["nll"]
    assert history[0]["nll"] != history[-1]["nll"]  # the first point saw other weights


def test_sampling_the_policy_to_validate_leaves_the_training_unchanged(tmp_path):
    # Dropout draws from the global generator, which sampling reseeds: validation must not move it.
    sampled = GenerationConfig(max_new_tokens=4, do_sample=True, batch_size=2)

    def score(model, tok):
        texts = generate(model, tok, VAL_PROMPTS, sampled, seed=7)
        return {"length": sum(map(len, texts)) / len(texts)}

    plain = train_offline(*tiny_lm(dropout=0.1), ROWS, "a_lol", TRAIN, tmp_path / "a", PolicyConfig(["a_lol"], "r"))
    model, tok = tiny_lm(dropout=0.1)
    policy = PolicyConfig(["a_lol"], "r", validation=ValidationConfig(per_epoch=3))
    validated = train_offline(model, tok, ROWS, "a_lol", TRAIN, tmp_path / "b", policy, score=lambda m: score(m, tok))
    assert len(validation_history(validated.history)) == 6
    assert [h["loss"] for h in validated.history] == [h["loss"] for h in plain.history]
    assert_same_weights(plain.model.state_dict(), validated.model.state_dict(), atol=0)
