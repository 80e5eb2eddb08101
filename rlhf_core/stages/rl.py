"""RL stages: the A-LoL reference value fitted to the task's reward, and one policy per algorithm."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.config import ModelSource, PolicyConfig, TaskConfig
from rlhf_core.config_rl import ONLINE_SEMANTICS, PPOConfig, PROConfig
from rlhf_core.stages import trials
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table, train_rows
from rlhf_core.store import ArtifactRef, write_table

BASELINE = trials.BASELINE  # the policy partition that is the SFT reference itself, untouched by RL
# Every policy setting but those that say which partitions exist (the algorithms, the sweep grid) and
# the per-algorithm overrides: a trial's stages run on its variant config, with its overrides applied.
POLICY_READS = [f"policy.{f.name}" for f in dataclasses.fields(PolicyConfig)
                if f.name not in ("algorithms", "sweep", "overrides")] + ["compute"]


def policy_partitions(task: TaskConfig) -> list[str]:
    """The baseline and each algorithm, or their trials where the task declares seeds or a sweep."""
    return trials.partition_keys(task)


@stage(lambda task: ["reference_value", "seed", *reward_terms(task)])
def reference_value(ctx: Context, sft_ref: ArtifactRef, prompts_ref: ArtifactRef, rewards_ref: ArtifactRef,
                    scorer_refs: dict[str, ArtifactRef]) -> Result:
    """V_ref(x) and the advantage A = R - V_ref(x) of every offline training row (docs/sources.md §6.2).

    R is the task's reward function: the training rows' R comes from the ``rewards`` asset, and
    V_ref is fitted on the same function applied, through the same scorers, to the reference
    policy's own samples on the validation prompts.
    """
    from safetensors.torch import save_model as save_head

    from rlhf_core.eval.generate import generate
    from rlhf_core.eval.plots import histogram
    from rlhf_core.models.load import load_causal_lm
    from rlhf_core.train.value import fit_value_head, predict_values, prompt_states

    cfg = ctx.cfg.reference_value

    def build(out: Path, _: Path) -> dict[str, Any]:
        tok = load_tok(sft_ref)
        policy = load_causal_lm(ModelSource(path=sft_ref.path))
        val = table(prompts_ref)
        val_prompts = val[val["split"] == "val"]["prompt"].tolist()
        gen = generate(policy, tok, val_prompts, cfg.generation, ctx.cfg.seed,
                       num_beams=cfg.num_beams, repetition_penalty=cfg.repetition_penalty)
        targets = np.array(reward_function(ctx.cfg, scorer_refs)(val_prompts, gen))
        head, curve = fit_value_head(prompt_states(policy, tok, val_prompts), targets, cfg, ctx.cfg.seed)
        save_head(head, str(out / "value_head.safetensors"))
        rows = train_rows(rewards_ref)
        unique = rows["prompt"].unique().tolist()
        values = dict(zip(unique, predict_values(head, prompt_states(policy, tok, unique))))
        rows["value"] = rows["prompt"].map(values)
        rows["advantage"] = rows["reward"] - rows["value"]
        write_table(rows, out / TABLE)
        histogram({"advantage": rows["advantage"].to_numpy()}, out / "advantages.png", "A = R - V_ref(x)")
        return {"val_prompts": len(val_prompts), "val_reward_mean": float(targets.mean()),
                "value_mse_per_epoch": [round(x, 5) for x in curve], "train_rows": len(rows),
                "train_reward_mean": float(rows["reward"].mean()),
                "positive_advantage_share": float((rows["advantage"] > 0).mean()),
                "advantage_histogram": "advantages.png", "preview": rows.head(5)}

    parents = {"sft": sft_ref, "prompts": prompts_ref, "rewards": rewards_ref,
               **{f"scorer/{c}": r for c, r in scorer_refs.items()}}
    return ctx.build("reference_value", None, parents, build)


def prompts_dataset(task: TaskConfig) -> str:
    """The online algorithms' and the evaluation's prompts: ``policy.prompts``, else the SFT data."""
    return task.policy.prompts or task.sft.data


def online_config(cfg: PolicyConfig, algorithm: str) -> PPOConfig:
    """The engine settings of an online partition: ``policy.fg_ppo`` over [FG]'s defaults for fg_ppo,
    else ``policy.ppo`` with the partition's semantics (ppo: legacy_step, grpo: grpo)."""
    if algorithm == "fg_ppo":
        return cfg.fg_ppo.settings
    return dataclasses.replace(cfg.ppo, semantics=ONLINE_SEMANTICS[algorithm])


def _start_source(ctx: Context, sft_ref: ArtifactRef | None) -> ModelSource:
    """Where the policy RL starts from: the SFT artifact, else ``policy.init``."""
    return ModelSource(path=sft_ref.path) if sft_ref is not None else ctx.cfg.policy.init


def _start(ctx: Context, sft_ref: ArtifactRef | None, quantization: str | None = None):
    """The starting policy and its tokenizer."""
    from rlhf_core.models.load import load_policy, load_tokenizer

    source = _start_source(ctx, sft_ref)
    return load_policy(source, quantization), load_tokenizer(source)


@stage(lambda task: [*POLICY_READS, *reward_terms(task)])
def policy(ctx: Context, algorithm: str, sft_ref: ArtifactRef | None, value_ref: ArtifactRef | None,
           pairs_ref: ArtifactRef | None, prompts_ref: ArtifactRef, scorer_refs: dict[str, ArtifactRef]) -> Result:
    """Fine-tune the SFT reference (or ``policy.init``) with one algorithm; the ``sft`` partition is
    the starting policy itself.

    Offline algorithms learn from the rows of ``reference_value`` (R and A), preference ones
    (dpo, pro) from the pairs, and online ones (ppo, grpo, fg_ppo) from samples on the train
    prompts, scored by the task's R (fg_ppo: the dense reward of ``policy.fg_ppo.rewards``)
    through the same scorers as V_ref and the evaluation.
    """
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import save_model
    from rlhf_core.train.losses import OFFLINE_ALGORITHMS, PREFERENCE_ALGORITHMS
    from rlhf_core.train.offline import train_dpo, train_offline
    from rlhf_core.train.pro import train_pro

    cfg = ctx.cfg.policy
    if algorithm == BASELINE:
        if sft_ref is not None:
            return sft_ref, {"algorithm": BASELINE, "artifact": sft_ref.path, "content_hash": sft_ref.content_hash}

        def build_start(out: Path, _: Path) -> dict[str, Any]:
            save_model(*_start(ctx, None), out)
            return {"algorithm": BASELINE, "init": str(cfg.init)}

        return ctx.build("policy", BASELINE, {}, build_start, algorithm=algorithm)
    known = OFFLINE_ALGORITHMS + PREFERENCE_ALGORITHMS + ("pro", *ONLINE_SEMANTICS)
    if algorithm not in known:
        raise ValueError(f"policy.algorithms: unknown algorithm {algorithm!r}; known: {known}")
    online = algorithm in ONLINE_SEMANTICS
    if online:
        ppo_cfg = online_config(cfg, algorithm)
        parents = {"prompts": prompts_ref, **{f"scorer/{c}": r for c, r in scorer_refs.items()}}
    else:
        parents = {"data": pairs_ref if algorithm in (*PREFERENCE_ALGORITHMS, "pro") else value_ref}

    def build(out: Path, work: Path) -> dict[str, Any]:
        model, tok = _start(ctx, sft_ref, ctx.cfg.compute.quantization)
        if online:
            return _train_online(ctx, model, tok, ppo_cfg, prompts_ref, scorer_refs, out, work, algorithm)
        rows = train_rows(parents["data"])
        if algorithm == "pro":
            result = train_pro(model, tok, rows, PROConfig(train=cfg.train, sft_weight=cfg.pro_sft_weight), work,
                               compute=ctx.cfg.compute)
        elif algorithm in PREFERENCE_ALGORITHMS:
            result = train_dpo(model, tok, rows, cfg, work, reference_free=algorithm == "dpo_ref_free",
                               compute=ctx.cfg.compute)
        else:
            result = train_offline(model, tok, rows, algorithm, cfg.train, work, cfg, compute=ctx.cfg.compute)
        saved = save_model(result.model, tok, out, _start_source(ctx, sft_ref))
        loss_curve(result.history, out / "loss_curve.png", f"{algorithm} loss")
        last = result.history[-1]
        return {**saved, "algorithm": algorithm, "train_rows": len(rows), "steps": result.steps,
                "final_loss": last["loss"], "loss_curve": "loss_curve.png",
                **{k: v for k, v in last.items() if k not in ("step", "loss", "lr")}}

    return ctx.build("policy", algorithm, {"sft": sft_ref, **parents}, build, algorithm=algorithm)


def _online_reward(ctx: Context, algorithm: str, scorer_refs: dict[str, ArtifactRef]):
    """fg_ppo: the dense reward of the named components; ppo / grpo: the task's R."""
    if algorithm != "fg_ppo":
        return reward_function(ctx.cfg, scorer_refs)
    from rlhf_core.rewards.dense import DenseReward
    from rlhf_core.stages.annotation import open_component

    terms = ctx.cfg.policy.fg_ppo.rewards
    return DenseReward({c: open_component(scorer_refs[c])[1] for c in terms}, terms)


def _train_online(ctx: Context, model, tok, ppo_cfg: PPOConfig, prompts_ref: ArtifactRef,
                  scorer_refs: dict[str, ArtifactRef], out: Path, work: Path, algorithm: str) -> dict[str, Any]:
    """Online RL on the train prompts (best-by-eval on the val prompts when ``eval_every`` is set);
    metadata: the reward curve and where the time went."""
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import from_pretrained_source, save_model
    from rlhf_core.train.ppo import train_ppo

    rows = table(prompts_ref)
    prompts = train_rows(prompts_ref)["prompt"].unique().tolist()
    val = rows[rows["split"] == "val"]["prompt"].unique().tolist() if "split" in rows else []
    value_model = None
    if ppo_cfg.critic == "separate" and algorithm == "fg_ppo":
        from transformers import AutoModel

        value_model = from_pretrained_source(AutoModel, ctx.cfg.policy.fg_ppo.value_model, use_safetensors=True)
    result = train_ppo(model, tok, prompts, _online_reward(ctx, algorithm, scorer_refs), ppo_cfg, work,
                       eval_prompts=val, value_model=value_model)
    if result.best_step is not None:  # [FG] keeps the weights with the best greedy eval reward
        from safetensors.torch import load_model

        load_model(model, str(work / "best" / "policy.safetensors"))
    save_model(model, tok, out)
    steps = [h for h in result.history if "step" in h]
    loss_curve(steps, out / "loss_curve.png", f"{algorithm} loss")
    return {"algorithm": algorithm, "semantics": ppo_cfg.semantics, "train_prompts": len(prompts),
            "steps": result.steps, "stop_reason": result.stop_reason or "", "final_loss": steps[-1]["loss"],
            "reward_per_step": [round(h["reward"], 4) for h in steps], "kl_per_step": [round(h["kl"], 4) for h in steps],
            "best_eval_reward": result.best_eval_reward, "best_step": result.best_step,
            "loss_curve": "loss_curve.png", **{f"time_{k}": round(v, 2) for k, v in result.timings.items()}}
