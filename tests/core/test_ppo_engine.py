"""The online-RL engine on tiny GPT-2 policies: it learns a toy reward, its guards stop a run on
the last good weights, and a run killed mid-PPO resumes to the same result."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlhf_core.train.ppo import segment_positions, train_ppo
from tests.conftest import gpt2_tokenizer
from tests.core.tiny_rl import PROMPTS, letter_segments, letter_share, one_thread, tiny_policy, tiny_t5, toy_ppo_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def rollout_rewards(result):
    return [h["reward"] for h in result.history if "step" in h]


@pytest.mark.parametrize(
    "semantics,reward_fn,extra",
    [
        ("legacy_step", letter_share, {}),
        (
            "fine_grained",
            letter_segments,
            dict(
                vf_coef=1.0,
                whiten_rewards=True,
                adaptive_kl=False,
                lr=3e-3,
                kl_stop_threshold=10.0,
                critic="separate",
                lr_schedule="linear",
                warmup_steps=10,
            ),
        ),
        ("grpo", letter_share, dict(samples_per_prompt=2, prompts_per_rollout=8)),
        ("rloo", letter_share, dict(samples_per_prompt=2, prompts_per_rollout=8)),
    ],
)
def test_short_run_increases_the_toy_reward(tmp_path, semantics, reward_fn, extra):
    policy, tok = tiny_policy(seed=0)
    value_model = tiny_policy(seed=5)[0].transformer if extra.get("critic") == "separate" else None
    cfg = toy_ppo_config(**{"semantics": semantics, "steps": 30, "prompts_per_rollout": 16, "eval_every": 10, **extra})
    result = train_ppo(policy, tok, PROMPTS, reward_fn, cfg, tmp_path, eval_prompts=PROMPTS, value_model=value_model)
    rewards = rollout_rewards(result)
    assert result.stop_reason is None and result.steps == 30
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.05, rewards
    evals = [h["eval_reward"] for h in result.history if "eval_reward" in h]
    assert len(evals) == 4 and result.best_eval_reward == max(evals) > evals[0]
    assert (tmp_path / "best" / "COMPLETE").exists()
    assert set(result.timings) == {"generation_s", "scoring_s", "update_s"}
    assert all(v > 0 for v in result.timings.values())


def test_encoder_decoder_policy_with_a_separate_value_model(tmp_path):
    """[FG]'s layout: a T5 policy and a separate T5 critic with an MLP head, dense rewards."""
    policy, tok = tiny_t5(seed=0)
    cfg = toy_ppo_config(
        semantics="fine_grained",
        steps=30,
        prompts_per_rollout=16,
        vf_coef=1.0,
        lr=3e-3,
        whiten_rewards=True,
        adaptive_kl=False,
        critic="separate",
    )
    result = train_ppo(policy, tok, PROMPTS, letter_segments, cfg, tmp_path, value_model=tiny_t5(seed=1)[0])
    rewards = rollout_rewards(result)
    assert result.stop_reason is None
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.05, rewards


def test_lora_policy_uses_its_base_as_reference(tmp_path):
    from peft import LoraConfig, get_peft_model

    base, tok = tiny_policy(seed=0)
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True))
    frozen = {n: p.clone() for n, p in policy.named_parameters() if "lora_" not in n}
    adapter = {n: p.clone() for n, p in policy.named_parameters() if "lora_B" in n}  # B starts at zero
    result = train_ppo(policy, tok, PROMPTS, letter_share, toy_ppo_config(steps=4, lr=3e-2), tmp_path)
    kls = [h["kl"] for h in result.history]
    assert kls[0] == 0.0 and any(kl != 0.0 for kl in kls[1:])  # reference = adapter disabled
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if n in frozen)
    assert any(not torch.equal(p, adapter[n]) for n, p in policy.named_parameters() if n in adapter)


def test_non_finite_reward_stops_with_step_and_keeps_last_good_weights(tmp_path):
    calls = []

    def poisoned(prompts, completions):
        calls.append(1)
        return [math.nan] * len(completions) if len(calls) == 3 else letter_share(prompts, completions)

    reference, tok = tiny_policy(seed=0)
    train_ppo(reference, tok, PROMPTS, letter_share, toy_ppo_config(steps=2), tmp_path / "straight")
    policy, _ = tiny_policy(seed=0)
    result = train_ppo(policy, tok, PROMPTS, poisoned, toy_ppo_config(steps=4), tmp_path / "guarded")
    assert result.stop_reason == "non-finite rewards in the rollout at step 3"
    assert result.steps == 2
    for (name, a), b in zip(policy.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), name


def test_kl_limit_stops_the_run(tmp_path):
    free, tok = tiny_policy(seed=0)
    free_run = train_ppo(free, tok, PROMPTS, letter_share, toy_ppo_config(steps=5), tmp_path / "free")
    kls = [h["kl"] for h in free_run.history]
    limit = 0.05
    first = next(i for i, kl in enumerate(kls, start=1) if kl > limit)  # KL is 0 at step 1, then grows
    assert first > 1
    reference, _ = tiny_policy(seed=0)
    train_ppo(reference, tok, PROMPTS, letter_share, toy_ppo_config(steps=first - 1), tmp_path / "straight")
    policy, _ = tiny_policy(seed=0)
    result = train_ppo(policy, tok, PROMPTS, letter_share, toy_ppo_config(steps=5, kl_limit=limit), tmp_path / "kl")
    assert result.stop_reason == f"KL {kls[first - 1]:.4g} above the limit {limit} at step {first}"
    assert result.steps == first - 1
    assert torch.equal(policy.lm_head.weight, reference.lm_head.weight)


def test_segment_rewards_land_on_the_segment_end_token():
    tok = gpt2_tokenizer()  # byte-level, merges only "Ġt", "he", "Ġthe", "Ġa", "in", "er"
    # "ab cd": tokens a, b, Ġ, c, d -> "ab" ends at token 1, "ab cd" at token 4; "" maps to 0
    assert segment_positions(tok, "ab cd", [2, 5, 0]) == [1, 4, 0]
    # "in the": in, Ġthe -> "in" ends at token 0, the whole text at token 1
    assert segment_positions(tok, "in the", [2, 6]) == [0, 1]


def test_sequence_rewards_land_on_the_last_response_token_eos_included(tmp_path):
    from rlhf_core.train.ppo import _Engine

    policy, tok = tiny_policy(seed=0)
    dense = lambda prompts, texts: [[(None, 1.0), (3, 0.5)], 2.0]  # noqa: E731
    engine = _Engine(policy, tok, PROMPTS, dense, toy_ppo_config(), tmp_path, None, None)
    # row 0: 4 response tokens (the last is EOS): None -> token 3; "the" ends at its own last token
    raw = engine._score(["p", "p"], ["the cat", "a"], [4, 2], 6)
    the = len(tok("the", add_special_tokens=False)["input_ids"]) - 1
    expected = torch.zeros(2, 6)
    expected[0, 3] += 1.0
    expected[0, the] += 0.5
    expected[1, 1] = 2.0
    assert torch.equal(raw, expected)


def _run_script(work: Path, out: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "tests.core.tiny_rl", str(work), str(out), str(kill_at)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sigkill_mid_ppo_then_resume_equals_an_uninterrupted_run(tmp_path):
    straight = _run_script(tmp_path / "a", tmp_path / "a.pt", kill_at=0)
    assert straight.returncode == 0, straight.stderr
    # 8 rows in minibatches of 4 over 2 PPO epochs: 4 policy losses per step; the 7th is step 2, epoch 2
    killed = _run_script(tmp_path / "b", tmp_path / "b.pt", kill_at=7)
    assert killed.returncode == -9
    state = json.loads((tmp_path / "b" / "checkpoint" / "state.json").read_text())
    assert (state["step"], state["current"]["epochs_done"]) == (1, 1)  # a mid-step checkpoint with buffer
    resumed = _run_script(tmp_path / "b", tmp_path / "b.pt", kill_at=0)
    assert resumed.returncode == 0, resumed.stderr
    a, b = json.loads(straight.stdout.splitlines()[-1]), json.loads(resumed.stdout.splitlines()[-1])
    assert b["resumed_from"] == 1 and a["history"] == b["history"]
    wa, wb = torch.load(tmp_path / "a.pt", weights_only=True), torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_linear_schedule_warms_up_then_decays_per_optimiser_step(tmp_path):
    from rlhf_core.train.ppo import _Engine

    policy, tok = tiny_policy(seed=0)
    cfg = toy_ppo_config(lr_schedule="linear", warmup_steps=2)  # 3 rollouts x 2 epochs x 8/4 minibatches = 12
    engine = _Engine(policy, tok, PROMPTS, letter_share, cfg, tmp_path, None, None)
    assert [engine.engine.lr_factor(t) for t in (0, 1, 2, 7, 12)] == [0.5, 1.0, 1.0, 0.5, 0.0]
    fg = _Engine(
        policy,
        tok,
        PROMPTS,
        letter_share,
        toy_ppo_config(semantics="fine_grained", lr_schedule="linear"),
        tmp_path,
        None,
        None,
    )
    assert fg.engine.lr_factor(3) == pytest.approx(0.5)  # [FG]: one step per epoch -> 6 in all; (6-3)/6


def test_ppo_config_is_strict():
    from rlhf_core.config import ConfigError, parse_section
    from rlhf_core.config.rl import PPOConfig

    cfg = parse_section(PPOConfig, {"semantics": "fine_grained", "kl_limit": 20, "lr_schedule": "linear"}, "policy.ppo")
    assert (cfg.semantics, cfg.kl_limit, cfg.lr_schedule) == ("fine_grained", 20.0, "linear")
    with pytest.raises(ConfigError, match="policy.ppo.semantics: expected one of"):
        parse_section(PPOConfig, {"semantics": "ppo2"}, "policy.ppo")
    with pytest.raises(ConfigError, match="grpo needs samples_per_prompt >= 2"):
        PPOConfig(semantics="grpo")


def test_our_reward_functions_drive_trl_grpo(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlhf_core.train.ppo import as_trl_reward_func

    dense = as_trl_reward_func(letter_segments, "letter_segments")
    assert dense([], ["ab c1"]) == [pytest.approx(0.3 * 1.0 + 0.3 * 0.5)]  # words "ab" (2/2) and "c1" (1/2)
    policy, tok = tiny_policy(seed=0)
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        save_strategy="no",
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=as_trl_reward_func(letter_share, "letters"),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS * 2}),
        processing_class=tok,
    )
    trainer.train()
    logged = [h["rewards/letters/mean"] for h in trainer.state.log_history if "rewards/letters/mean" in h]
    assert len(logged) == 2 and all(0.0 <= r <= 1.0 for r in logged)


def test_a_run_does_not_depend_on_what_drew_from_the_global_generators_before_it(tmp_path):
    # Under `rlhf run` many steps share a process: GRPO's sampling went on from wherever they left torch's
    # generator, so the same partition key gave other weights in a run that held other algorithms.
    cfg = toy_ppo_config(semantics="grpo", steps=2, samples_per_prompt=2, prompts_per_rollout=8)
    weights = []
    for k, draws in enumerate((0, 1000)):
        policy, tok = tiny_policy(seed=0)
        torch.rand(draws)
        train_ppo(policy, tok, PROMPTS, letter_share, cfg, tmp_path / str(k))
        weights.append(torch.cat([p.detach().flatten() for p in policy.parameters()]))
    assert torch.equal(weights[0], weights[1])
