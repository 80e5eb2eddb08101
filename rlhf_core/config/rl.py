"""Config sections of the policy stage: the online RL family (PPO, GRPO/RLOO, fg_ppo) and PRO,
and A-LoL's reference value, parsed as strictly as the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rlhf_core.config.evaluation import GenerationConfig
from rlhf_core.config.models import ModelSource
from rlhf_core.config.parse import ConfigError, parse_section
from rlhf_core.config.train import TrainConfig

# The online policy partitions and the update rule each runs.
ONLINE_SEMANTICS = {"ppo": "legacy_step", "grpo": "grpo", "fg_ppo": "fine_grained"}


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
    compiled_sampling: bool = False  # causal LMs: static KV cache + torch.compile'd decode steps (for CUDA)
    eval_every: int = 0  # rollouts between greedy evaluations that select the best checkpoint; 0: never
    checkpoint_every: int = 1  # rollouts between resumable checkpoints (each also saved after every PPO epoch)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.semantics in ("grpo", "rloo") and self.samples_per_prompt < 2:
            raise ConfigError(f"{self.semantics} needs samples_per_prompt >= 2, got {self.samples_per_prompt}")
        if self.mini_batch_size < 1 or self.ppo_epochs < 1 or self.steps < 1:
            raise ConfigError("mini_batch_size, ppo_epochs and steps must be >= 1")


# [FG]'s fine_grained_config.yml (docs/sources.md §6.1): what fg_ppo.ppo starts from.
FG_PPO_DEFAULTS: dict[str, Any] = dict(
    kl_coef=0.3,
    adaptive_kl=False,
    gamma=1.0,
    lam=0.95,
    pg_coef=1.0,
    vf_coef=1.0,
    cliprange=0.2,
    cliprange_value=0.2,
    whiten_rewards=True,
    kl_stop_threshold=10.0,
    kl_stop_count=5,
    lr=1e-5,
    adam_eps=1e-5,
    lr_schedule="linear",
    ppo_epochs=4,
    samples_per_prompt=4,
    temperature=0.7,
    top_k=20,
    max_grad_norm=None,
)


@dataclass(frozen=True)
class DenseTerm:
    """How one reward component enters the dense reward: ``weight * (value - mean) / std + bias``.

    The weight is [FG]'s positive/negative reward of a +-1 segment verdict (R1 0.3, R2 0.5) or the
    scale of a sequence-level score; mean and std z-normalise such a score (R3: -0.447, 8.30).
    """

    weight: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if not self.std > 0:
            raise ConfigError(f"std must be positive, got {self.std}")

    def __call__(self, value: float) -> float:
        return self.weight * (value - self.mean) / self.std + self.bias


@dataclass(frozen=True)
class FineGrainedPPOConfig:
    """fg_ppo: PPO with [FG] semantics on a dense reward (docs/sources.md §6.1, §3.1).

    ``rewards`` names the components (entries of ``annotation.scorers``) and how each enters; a
    dense scorer's segment rewards land on the segments' last tokens, any other scorer's value on
    the last response token. ``ppo`` holds PPOConfig fields over [FG]'s (``FG_PPO_DEFAULTS``);
    ``value_model`` is the trunk of a separate critic ([FG]: t5-base beside the t5-large policy).
    """

    rewards: dict[str, DenseTerm]
    ppo: dict[str, Any] = field(default_factory=dict)
    value_model: ModelSource | None = None

    def __post_init__(self) -> None:
        if not self.rewards:
            raise ConfigError("rewards: name at least one reward component")
        if "semantics" in self.ppo:
            raise ConfigError("ppo.semantics: fg_ppo is always fine_grained; leave it out")
        if self.settings.critic == "separate" and self.value_model is None:
            raise ConfigError("ppo.critic separate needs a value_model")

    @property
    def settings(self) -> PPOConfig:
        return parse_section(PPOConfig, {**FG_PPO_DEFAULTS, **self.ppo, "semantics": "fine_grained"}, "ppo")


@dataclass(frozen=True)
class PROConfig:
    """PRO (docs/sources.md §6.4): ranking loss over candidates plus a weighted SFT term."""

    train: TrainConfig
    sft_weight: float = 0.05


PAIR_ALGORITHMS = ("dpo", "dpo_ref_free", "pro")  # learn from policy.pairs; the rest offline from policy.data
OFFLINE_ALGORITHMS = ("nll", "wbc", "r_gold", "r_lol", "a_lol", "a_lol_ref_free", "a_lol_seq", "a_lol_kl")
PREFERENCE_ALGORITHMS = ("dpo", "dpo_ref_free")  # the DPO losses (PRO has its own trainer)
ALGORITHMS = (*OFFLINE_ALGORITHMS, *PREFERENCE_ALGORITHMS, "pro", *ONLINE_SEMANTICS)


@dataclass(frozen=True)
class ValidationConfig:
    """[LoL] validation while the offline family trains (docs/sources.md §6.2, §7.2): ``per_epoch`` times an epoch
    (the seed's ``-vf``), the policy samples the val prompts (beam search and repetition penalty as the seed's
    final pass) and each reward column's mean is kept in the policy artifact's history; ``metric`` (a reward
    component, or ``reward`` for R, the seed's final_reward) is the one the aggregate table's best and worst
    validation columns report."""

    per_epoch: int
    metric: str = "reward"
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    num_beams: int = 2
    repetition_penalty: float = 2.5

    def __post_init__(self) -> None:
        if self.per_epoch < 1:
            raise ConfigError(f"policy.validation.per_epoch: at least 1, got {self.per_epoch}")


@dataclass(frozen=True)
class PolicyConfig:
    """RL from the SFT reference (or ``init``); one partition per algorithm."""

    algorithms: list[str]
    data: str | None = None  # prompt/completion rows the offline algorithms learn from (annotation.data)
    pairs: str | None = None  # prompt/chosen/rejected rows for the preference algorithms (dpo, pro)
    train: TrainConfig = field(default_factory=TrainConfig)
    # The starting policy of a task that trains no SFT ([WA] gpt2, [CRS] llama2-oasst-baseline, [FG] t5 SFT).
    init: ModelSource | None = None
    prompts: str | None = None  # the online algorithms' and the evaluation's prompts (default: sft.data)
    ppo_clip: float | None = None  # epsilon of the importance-weight clip; None: no clip
    kl_beta: float = 0.0  # a_lol_kl; also r_lol and a_lol (with ppo_clip 0), the [LoL] --kl_beta
    validation: ValidationConfig | None = None  # the offline family's validation history ([LoL]); None: none
    dpo_beta: float = 0.1
    sampling: Literal["uniform", "priority"] = "uniform"
    pro_sft_weight: float = 0.05  # weight of PRO's SFT term ([LoL] pro_qlora_llama_hh.py)
    # The online algorithms' settings; the partition sets the semantics (ppo: legacy_step, grpo: grpo,
    # whose group size is samples_per_prompt). fg_ppo has its own section: dense reward, [FG] defaults.
    ppo: PPOConfig | None = None
    fg_ppo: FineGrainedPPOConfig | None = None
    # Per-algorithm settings over the shared ones ({dpo: {lr: 5.0e-5}}), and grids to sweep
    # ({dpo: {lr: [5.0e-5, 1.0e-4]}}): rlhf_core/stages/trials.py. "lr" is the algorithm's own
    # learning rate; any other key is a path under policy.
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [a for a in self.algorithms if a not in ALGORITHMS]
        if unknown:
            raise ConfigError(f"algorithms: unknown {unknown}; known: {list(ALGORITHMS)}")
        # Committed settings may name an algorithm a run leaves out (--set policy.algorithms=[nll, dpo]); a grid
        # to sweep may not, since it would train nothing.
        unknown = sorted(set(self.overrides) - set(ALGORITHMS))
        if unknown:
            raise ConfigError(f"policy.overrides: unknown algorithms {unknown}; known: {list(ALGORITHMS)}")
        unknown = sorted(set(self.sweep) - set(self.algorithms))
        if unknown:
            raise ConfigError(f"policy.sweep: {unknown} are not in policy.algorithms")
        empty = [f"{a}.{k}" for a, grid in self.sweep.items() for k, values in grid.items() if not values]
        if empty:
            raise ConfigError(f"policy.sweep: {empty} list no values")
        needs = {
            "ppo": [a for a in ("ppo", "grpo") if a in self.algorithms],
            "fg_ppo": [a for a in ("fg_ppo",) if a in self.algorithms],
            "data": [a for a in self.algorithms if a not in (*ONLINE_SEMANTICS, *PAIR_ALGORITHMS)],
            "pairs": [a for a in self.algorithms if a in PAIR_ALGORITHMS],
        }
        for section, algorithms in needs.items():
            if algorithms and getattr(self, section) is None:
                raise ConfigError(f"policy.algorithms {algorithms} need policy.{section}")
        if self.ppo is not None and self.ppo.semantics != "legacy_step":
            raise ConfigError(
                "policy.ppo.semantics: the partition sets it (ppo: legacy_step, grpo: grpo); leave it out"
            )
        if "grpo" in self.algorithms and self.ppo.samples_per_prompt < 2:
            raise ConfigError(f"grpo needs policy.ppo.samples_per_prompt >= 2, got {self.ppo.samples_per_prompt}")
        if "a_lol_kl" in self.algorithms:
            self._check_kl_beta()

    def _check_kl_beta(self) -> None:
        """a_lol_kl needs a beta > 0 (with 0 it is a_lol_ref_free); the seed gives none to copy (docs/sources.md
        §10.3), so it is set for a_lol_kl alone (overrides or a sweep), which leaves R-LoL's and A-LoL's as they are."""
        betas = self.sweep.get("a_lol_kl", {}).get("kl_beta") or [self.overrides.get("a_lol_kl", {}).get("kl_beta")]
        betas = [self.kl_beta if b is None else float(b) for b in betas]
        if not all(b > 0 for b in betas):
            raise ConfigError(
                f"a_lol_kl needs a kl_beta > 0, got {betas}: set policy.overrides.a_lol_kl.kl_beta "
                "(docs/sources.md §10.3)"
            )


@dataclass(frozen=True)
class ReferenceValueConfig:
    """A-LoL value estimate V_ref(x) (docs/sources.md §6.2)."""

    num_heads: int = 8
    max_value: float = 1.0
    epochs: int = 5
    lr: float = 2e-5
    batch_size: int = 32
    dropout: float = 0.1
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    num_beams: int = 2  # docs/sources.md §6.2 generation-task settings
    repetition_penalty: float = 2.5
