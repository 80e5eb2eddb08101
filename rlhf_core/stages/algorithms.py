"""Policy algorithms by name: the trainer each runs, the config section it reads, the loss it minimises.

    ALGORITHMS.get("dpo")   # Algorithm("dpo", train=preference, section=("policy.train", "policy.dpo_beta"), ...)

One entry per name ``policy.algorithms`` may list. The ``policy`` stage (``stages.rl``) keys each
partition on its entry's section and on its trainer's code alone (``Stage(uses=...)``), so an edit
to PRO's trainer or to ``policy.dpo_beta`` re-trains only the partitions that run it. ``loss`` is
the loss the trainer minimises (it reaches it by import): an asset's trail to its math is
``assets/rl.py`` -> ``stages.rl.policy`` -> ``ALGORITHMS`` -> a trainer here -> ``rlhf_core.train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlhf_core.config import ModelSource, TaskConfig
from rlhf_core.config.rl import ONLINE_SEMANTICS, PPOConfig, PROConfig
from rlhf_core.registry import Registry
from rlhf_core.stages.annotation import open_component, reward_function, reward_terms
from rlhf_core.stages.base import Context, table, train_rows
from rlhf_core.store import ArtifactRef
from rlhf_core.train.losses import OFFLINE_ALGORITHMS, OFFLINE_SETTINGS, dpo_loss, offline_loss
from rlhf_core.train.ppo_math import policy_loss
from rlhf_core.train.pro import pro_loss


@dataclass(frozen=True)
class PolicyRun:
    """What a trainer gets: the config view, the starting policy, what it learns from, where to write."""

    ctx: Context
    algorithm: str
    model: Any
    tok: Any
    start: ModelSource  # where the starting policy came from (a LoRA artifact names its base)
    data: ArtifactRef | None  # the rows of ``learns_from`` (offline: reference_value; pairs: the pairs)
    prompts: ArtifactRef
    scorers: dict[str, ArtifactRef]
    out: Path
    work: Path


@dataclass(frozen=True)
class Algorithm:
    name: str
    train: Callable[[PolicyRun], dict[str, Any]]  # trains, saves the policy into run.out; returns its metadata
    section: tuple[str, ...]  # the config paths of its own settings (those its trainer and loss read)
    loss: Callable[..., Any]
    learns_from: Literal["value", "pairs", "prompts"]  # A-LoL's value table, the preference pairs, or samples
    spreads: bool  # trains on the engine's prepared model, which spreads over the launcher's processes
    scored_by_r: bool = False  # its samples are scored by the task's reward R (its weights and transforms)
    validates: bool = False  # it samples the val prompts while training when the task sets policy.validation

    def reads(self, task: TaskConfig) -> list[str]:
        return [*self.section, *(reward_terms(task) if self.scored(task) else [])]

    def scored(self, task: TaskConfig) -> bool:
        """Whether it scores its own samples with R, through the task's scorers (which are then its parents)."""
        return self.scored_by_r or (self.validates and task.policy.validation is not None)


ALGORITHMS: Registry[Algorithm] = Registry("algorithm")


def algorithm(
    *names: str, section: tuple[str, ...] | Callable[[str], tuple[str, ...]], **declaration: Any
) -> Callable[[Callable], Callable]:
    """Register a trainer under each of ``names`` (the offline family shares one); ``section``: its
    config paths, or ``name -> paths`` where the names sharing a trainer read different settings."""

    def deco(train: Callable) -> Callable:
        for name in names:
            own = section(name) if callable(section) else section
            ALGORITHMS.add(name, Algorithm(name, train, own, **declaration))
        return train

    return deco


def _saved(run: PolicyRun, rows, result) -> dict[str, Any]:
    """Save the trained policy, its loss curve and, when it validated while training, its validation history
    (``validation.csv``: epoch, step and the mean of each reward column on the val prompts)."""
    import pandas as pd

    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import save_model
    from rlhf_core.train.validation import VALIDATION, VALIDATION_FILE, validation_history

    saved = save_model(result.model, run.tok, run.out, run.start)
    loss_curve(result.history, run.out / "loss_curve.png", f"{run.algorithm} loss")
    last = result.history[-1]
    meta = {
        **saved,
        "algorithm": run.algorithm,
        "train_rows": len(rows),
        "steps": result.steps,
        "final_loss": last["loss"],
        "loss_curve": "loss_curve.png",
        **{k: v for k, v in last.items() if k not in ("step", "loss", "lr", VALIDATION)},
    }
    validation = pd.DataFrame(validation_history(result.history))
    if validation.empty:
        return meta
    validation.to_csv(run.out / VALIDATION_FILE, index=False)
    return {**meta, "validation": validation}


def _val_score(run: PolicyRun) -> Callable[[Any], dict[str, float]] | None:
    """The policy -> the mean of each of R's score columns over its samples of the val prompts
    (``policy.validation``; docs/sources.md §6.2), or None when the task does not validate."""
    cfg = run.ctx.cfg.policy.validation
    if cfg is None:
        return None
    from rlhf_core.eval.generate import generate

    rows = table(run.prompts)
    prompts = rows[rows["split"] == "val"]["prompt"].tolist()
    if not prompts:
        raise ValueError("policy.validation: the prompts table has no val split")
    reward = reward_function(run.ctx.cfg, run.scorers)
    seed = run.ctx.cfg.policy.train.seed

    def score(model) -> dict[str, float]:
        texts = generate(
            model,
            run.tok,
            prompts,
            cfg.generation,
            seed,
            num_beams=cfg.num_beams,
            repetition_penalty=cfg.repetition_penalty,
        )
        scores = reward.scores(prompts, texts)
        return {c: float(scores[c].mean()) for c in scores.select_dtypes("number")}

    return score


@algorithm(
    *OFFLINE_ALGORITHMS,
    # policy.validation: every offline algorithm keeps a validation history when the task asks ([LoL])
    section=lambda name: ("policy.train", *(f"policy.{k}" for k in OFFLINE_SETTINGS[name]), "policy.validation"),
    loss=offline_loss,
    learns_from="value",
    spreads=True,
    validates=True,
)
def offline(run: PolicyRun) -> dict[str, Any]:
    """[LoL] offline RL on the training rows with their R and A = R - V_ref (docs/sources.md §6.2), validated on
    the val prompts ``policy.validation.per_epoch`` times an epoch when the task sets it."""
    from rlhf_core.train.offline import train_offline

    cfg, rows = run.ctx.cfg, train_rows(run.data)
    return _saved(
        run,
        rows,
        train_offline(
            run.model,
            run.tok,
            rows,
            run.algorithm,
            cfg.policy.train,
            run.work,
            cfg.policy,
            compute=cfg.compute,
            score=_val_score(run),
        ),
    )


@algorithm(
    "dpo", "dpo_ref_free", section=("policy.train", "policy.dpo_beta"), loss=dpo_loss, learns_from="pairs", spreads=True
)
def preference(run: PolicyRun) -> dict[str, Any]:
    """DPO on the preference pairs (docs/sources.md §6.3); ``dpo_ref_free`` drops the reference."""
    from rlhf_core.train.offline import train_dpo

    cfg, rows = run.ctx.cfg, train_rows(run.data)
    return _saved(
        run,
        rows,
        train_dpo(
            run.model,
            run.tok,
            rows,
            cfg.policy,
            run.work,
            reference_free=run.algorithm == "dpo_ref_free",
            compute=cfg.compute,
        ),
    )


@algorithm(
    "pro", section=("policy.train", "policy.pro_sft_weight"), loss=pro_loss, learns_from="pairs", spreads=False
)  # launched as one process, as before this registry: no multi-process PRO test yet
def pro(run: PolicyRun) -> dict[str, Any]:
    """PRO's ranking loss plus its SFT term on the pairs."""
    from rlhf_core.train.pro import train_pro

    cfg, rows = run.ctx.cfg, train_rows(run.data)
    pro_cfg = PROConfig(train=cfg.policy.train, sft_weight=cfg.policy.pro_sft_weight)
    return _saved(run, rows, train_pro(run.model, run.tok, rows, pro_cfg, run.work, compute=cfg.compute))


@algorithm(
    "ppo", "grpo", section=("policy.ppo",), loss=policy_loss, learns_from="prompts", spreads=False, scored_by_r=True
)
def online(run: PolicyRun) -> dict[str, Any]:
    """PPO (legacy_step semantics) or GRPO on samples of the train prompts, scored by the task's R."""
    ppo_cfg = dataclasses.replace(run.ctx.cfg.policy.ppo, semantics=ONLINE_SEMANTICS[run.algorithm])
    return train_online(run, ppo_cfg, reward_function(run.ctx.cfg, run.scorers))


@algorithm("fg_ppo", section=("policy.fg_ppo",), loss=policy_loss, learns_from="prompts", spreads=False)
def fine_grained(run: PolicyRun) -> dict[str, Any]:
    """[FG] PPO on the dense reward of ``policy.fg_ppo.rewards``, with [FG]'s defaults under its settings."""
    from rlhf_core.rewards.dense import DenseReward

    cfg = run.ctx.cfg.policy.fg_ppo
    value_model = None
    if cfg.settings.critic == "separate":
        from transformers import AutoModel

        from rlhf_core.models.load import from_pretrained_source

        value_model = from_pretrained_source(AutoModel, cfg.value_model, use_safetensors=True)
    reward = DenseReward({c: open_component(run.scorers[c])[1] for c in cfg.rewards}, cfg.rewards)
    return train_online(run, cfg.settings, reward, value_model)


def train_online(run: PolicyRun, ppo_cfg: PPOConfig, reward, value_model=None) -> dict[str, Any]:
    """Online RL on the train prompts (best-by-eval on the val prompts when ``eval_every`` is set);
    metadata: the reward curve and where the time went."""
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import save_model
    from rlhf_core.train.ppo import train_ppo

    rows = table(run.prompts)
    prompts = train_rows(run.prompts)["prompt"].unique().tolist()
    val = rows[rows["split"] == "val"]["prompt"].unique().tolist() if "split" in rows else []
    result = train_ppo(
        run.model, run.tok, prompts, reward, ppo_cfg, run.work, eval_prompts=val, value_model=value_model
    )
    save_model(run.model, run.tok, run.out)
    steps = [h for h in result.history if "step" in h]
    loss_curve(steps, run.out / "loss_curve.png", f"{run.algorithm} loss")
    return {
        "algorithm": run.algorithm,
        "semantics": ppo_cfg.semantics,
        "train_prompts": len(prompts),
        "steps": result.steps,
        "stop_reason": result.stop_reason or "",
        "final_loss": steps[-1]["loss"],
        "reward_per_step": [round(h["reward"], 4) for h in steps],
        "kl_per_step": [round(h["kl"], 4) for h in steps],
        "best_eval_reward": result.best_eval_reward,
        "best_step": result.best_step,
        "loss_curve": "loss_curve.png",
        **{f"time_{k}": round(v, 2) for k, v in result.timings.items()},
    }
