"""Config sections of the online RL family (PPO, GRPO/RLOO) and PRO, parsed as strictly as the rest.

They live beside ``config.py`` (which holds the task config) to keep each module small.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rlhf_core.config_train import TrainConfig
from rlhf_core.config_parse import ConfigError


@dataclass(frozen=True)
class PPOConfig:
    """Online RL on the rollout engine (docs/sources.md §6.1, §6.5-6.8).

    ``semantics`` picks the exact update rule: ``fine_grained`` ([FG]), ``legacy_step`` (TRL 0.7
    step-PPO: [LoL] baseline, [CRS], [WA]), or the critic-free ``grpo`` / ``rloo``. Defaults are
    TRL 0.7's PPOConfig defaults; the [FG] settings are kl_coef 0.3, lam 0.95, vf_coef 1.0,
    whiten_rewards true, adaptive_kl false, kl_stop_threshold 10.
    """

    semantics: Literal["fine_grained", "legacy_step", "grpo", "rloo"] = "legacy_step"
    steps: int = 20  # rollouts
    prompts_per_rollout: int = 16
    samples_per_prompt: int = 1  # [FG] 4; the group size of grpo / rloo
    mini_batch_size: int = 4
    grad_accum: int = 1  # legacy_step: minibatches per optimiser step
    ppo_epochs: int = 4
    lr: float = 1.41e-5
    adam_eps: float = 1e-8
    lr_schedule: Literal["constant", "linear"] = "constant"  # linear: [FG] warmup then decay to 0
    warmup_steps: int = 0  # optimiser steps
    max_grad_norm: float | None = None
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    pg_coef: float = 1.0
    kl_coef: float = 0.2  # init_kl_coef (legacy), kl_coef ([FG]), beta of the k3 KL term (grpo/rloo)
    adaptive_kl: bool = True
    kl_target: float = 6.0
    kl_horizon: float = 10000.0
    whiten_rewards: bool = False
    use_score_scaling: bool = False
    use_score_norm: bool = False
    score_clip: float | None = None
    ratio_threshold: float = 10.0  # legacy_step skips a minibatch whose mean ratio exceeds this
    kl_stop_threshold: float | None = None  # [FG] early stop: rollout KL above this on kl_stop_count rollouts
    kl_stop_count: int = 5
    kl_limit: float | None = None  # guard: stop (keeping the last good checkpoint) past this rollout KL
    critic: Literal["shared", "separate"] = "shared"  # value head on the policy trunk, or a value model
    value_dropout: float = 0.1
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    max_prompt_length: int = 128
    eval_every: int = 0  # rollouts between greedy evaluations that select the best checkpoint; 0: never
    checkpoint_every: int = 1  # rollouts between resumable checkpoints (each also saved after every PPO epoch)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.semantics in ("grpo", "rloo") and self.samples_per_prompt < 2:
            raise ConfigError(f"{self.semantics} needs samples_per_prompt >= 2, got {self.samples_per_prompt}")
        if self.mini_batch_size < 1 or self.ppo_epochs < 1 or self.steps < 1:
            raise ConfigError("mini_batch_size, ppo_epochs and steps must be >= 1")


@dataclass(frozen=True)
class PROConfig:
    """PRO (docs/sources.md §6.4): ranking loss over candidates plus a weighted SFT term."""

    train: TrainConfig
    sft_weight: float = 0.05
