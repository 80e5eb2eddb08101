"""The accelerate engine in one process: accumulation to a global batch, gradient checkpointing,
bf16, LoRA (only adapters train; merged = base + delta; the reference is the base with adapters
off), and checkpoint markers."""

import dataclasses
import math

import pandas as pd
import pytest
import torch
from engine_worker import ROWS, assert_same_weights, tiny_lm

from rlhf_core.config import ComputeConfig, LoraConfig, PolicyConfig, TrainConfig
from rlhf_core.train.loop import accumulation_steps, latest_checkpoint
from rlhf_core.train.offline import train_dpo, train_offline

# 9 rows in batches of 4: the epoch's last batch has 1 row, fewer than the 2 micro-batches.
TRAIN = TrainConfig(epochs=1, batch_size=4, lr=3e-3, max_length=48, checkpoint_every=100, seed=1)
SFT_ROWS = ROWS.iloc[:9]
PAIRS = pd.DataFrame(
    {"prompt": ROWS["prompt"][:6], "chosen": ROWS["completion"][:6], "rejected": ROWS["completion"][6:12].tolist()}
)


def sft(tmp_path, compute=None, dropout=0.0):
    model, tok = tiny_lm(dropout)
    result = train_offline(model, tok, SFT_ROWS, "nll", TRAIN, tmp_path, compute=compute)
    return result, {k: v.clone() for k, v in result.model.state_dict().items()}


def test_micro_batches_with_accumulation_equal_one_global_batch(tmp_path):
    whole, w_whole = sft(tmp_path / "a")
    micro, w_micro = sft(tmp_path / "b", ComputeConfig(micro_batch_size=2))
    assert [h["loss"] for h in micro.history] == pytest.approx([h["loss"] for h in whole.history], rel=1e-6)
    assert_same_weights(w_whole, w_micro, atol=2e-6)


def test_accumulation_steps_must_add_up_to_the_global_batch():
    assert accumulation_steps(32, 4, 2) == 4
    assert accumulation_steps(32, None, 2) == 1
    with pytest.raises(ValueError, match="not a multiple"):
        accumulation_steps(32, 5, 2)


def test_gradient_checkpointing_does_not_change_the_update(tmp_path):
    _, plain = sft(tmp_path / "a")
    _, ckpt = sft(tmp_path / "b", ComputeConfig(gradient_checkpointing=True))
    assert_same_weights(plain, ckpt, atol=1e-6)


def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    fp32, _ = sft(tmp_path / "a")
    bf16, _ = sft(tmp_path / "b", ComputeConfig(precision="bf16"))
    first, first_bf16 = fp32.history[0]["loss"], bf16.history[0]["loss"]
    assert first_bf16 != first  # bf16 really ran: its rounding shows
    assert first_bf16 == pytest.approx(first, rel=2e-2)


LORA = ComputeConfig(lora=LoraConfig(r=4, alpha=8, dropout=0.0, merge=False))


def test_lora_trains_only_adapters_and_merges_to_base_plus_delta(tmp_path):
    model, tok = tiny_lm()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = train_offline(model, tok, SFT_ROWS, "nll", TRAIN, tmp_path, compute=LORA).model
    state = peft_model.state_dict()
    adapters = {k for k in state if "lora_" in k}
    assert adapters and all(k.endswith(("lora_A.default.weight", "lora_B.default.weight")) for k in adapters)
    assert all(not torch.equal(state[k], torch.zeros_like(state[k])) for k in adapters if "lora_B" in k)
    for key, value in state.items():  # every base weight is where it started
        if "lora_" not in key:
            assert torch.equal(value, base[key.replace("base_model.model.", "").replace(".base_layer", "")]), key
    # Merging adds (alpha / r) * B @ A to each adapted weight; GPT-2's Conv1D stores it transposed.
    name = "transformer.h.0.attn.c_attn"
    a, b = (state[f"base_model.model.{name}.lora_{x}.default.weight"] for x in "AB")
    expected = base[f"{name}.weight"] + (8 / 4) * (b @ a).T
    merged = peft_model.merge_and_unload()
    torch.testing.assert_close(merged.state_dict()[f"{name}.weight"], expected, rtol=0, atol=1e-6)


def test_lora_dpo_reference_is_the_base_with_adapters_disabled(tmp_path):
    model, tok = tiny_lm()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    train = dataclasses.replace(TRAIN, epochs=4, lr=1e-2)
    policy = PolicyConfig(algorithms=["dpo"], data="rows", pairs="pairs", train=train, dpo_beta=0.1)
    result = train_dpo(model, tok, PAIRS, policy, tmp_path, compute=LORA)
    # At the first step the adapters are zero, so the policy is its reference: the loss is log 2.
    assert result.history[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    peft_model = result.model
    with peft_model.disable_adapter():
        off = {
            k.replace("base_model.model.", "").replace(".base_layer", ""): v
            for k, v in peft_model.state_dict().items()
            if "lora_" not in k
        }
    assert all(torch.equal(off[k], base[k]) for k in base)
    assert result.history[-1]["margin"] > 0  # the adapters learned to prefer the chosen responses


def test_merge_option_returns_a_plain_model(tmp_path):
    model, tok = tiny_lm()
    merged = train_offline(
        model, tok, SFT_ROWS, "nll", TRAIN, tmp_path, compute=ComputeConfig(lora=LoraConfig(r=4, alpha=8, dropout=0.0))
    ).model
    assert not any("lora_" in k for k in merged.state_dict())
    assert type(merged).__name__ == "GPT2LMHeadModel"


def test_only_checkpoints_with_their_marker_count(tmp_path):
    root = tmp_path / "checkpoints"
    for name, marked in [("step-00000002", True), ("step-00000004", False), ("step-00000006.tmp", False)]:
        (root / name).mkdir(parents=True)
        if marked:
            (root / name / "COMPLETE").write_text("x")
    assert latest_checkpoint(root).name == "step-00000002"
    (root / "step-00000006.tmp" / "COMPLETE").write_text("x")  # killed after the marker, before the swap
    assert latest_checkpoint(root).name == "step-00000006.tmp"
    assert latest_checkpoint(tmp_path / "none") is None


def test_lr_schedules_warm_up_then_decay_linearly_or_by_cosine():
    from rlhf_core.train.loop import lr_factor

    # 20 steps, warmup 0.1 -> 2 warmup steps (1/2, 2/2), then 18 steps of decay
    linear = TrainConfig(warmup_ratio=0.1)
    cosine = TrainConfig(warmup_ratio=0.1, lr_schedule="cosine")
    assert [lr_factor(s, 20, linear) for s in (0, 1, 2, 11, 19)] == pytest.approx([0.5, 1.0, 1.0, 0.5, 1 / 18])
    # cosine: 0.5 (1 + cos(pi (s - 2) / 18)): 1 at s = 2, 0.5 halfway (s = 11), near 0 at the end
    assert [lr_factor(s, 20, cosine) for s in (0, 1, 2, 11)] == pytest.approx([0.5, 1.0, 1.0, 0.5])
    assert lr_factor(5, 20, cosine) == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 18)))
    assert lr_factor(19, 20, cosine) == pytest.approx(0.5 * (1 + math.cos(math.pi * 17 / 18)))


def test_the_engine_builds_adamw_with_the_configured_betas_and_schedule():
    from rlhf_core.train.loop import Engine

    model, _ = tiny_lm()
    engine = Engine(model, dataclasses.replace(TRAIN, adam_beta2=0.95, lr_schedule="cosine"), steps=10)
    assert engine.optimizer.param_groups[0]["betas"] == (0.9, 0.95)
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(TRAIN.lr)  # no warmup: the full lr first
    for _ in range(5):
        engine.optimizer.step()
        engine.scheduler.step()
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(TRAIN.lr * 0.5)  # cosine halfway
