"""RL stages: the A-LoL reference value fitted to the task's reward, and one policy per algorithm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.config import ConfigError, ModelSource, TaskConfig
from rlhf_core.stages import trials
from rlhf_core.stages.algorithms import ALGORITHMS, PolicyRun
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table, train_rows
from rlhf_core.store import ArtifactRef, write_table

BASELINE = trials.BASELINE  # the policy partition that is the SFT reference itself, untouched by RL
START_READS = ["policy.init", "compute"]  # where every partition's policy starts (and its quantization)


def policy_partitions(task: TaskConfig) -> list[str]:
    """The starting policy and one partition per listed algorithm (each a name of ``ALGORITHMS``): the
    stage's partitions. The assets' are their trials (``trials.partition_keys``), which are these where the
    task declares no seeds or sweep."""
    known = ALGORITHMS.names()
    unknown = [a for a in task.policy.algorithms if a not in known]
    if unknown:
        raise ConfigError(
            f"policy.algorithms: unknown algorithm(s) {unknown}; known: {known} ({BASELINE!r}, the "
            "starting policy, is always a partition)"
        )
    return [BASELINE, *task.policy.algorithms]


@stage(lambda task: ["reference_value", "seed", *reward_terms(task)])
def reference_value(
    ctx: Context, sft: ArtifactRef, prompts: ArtifactRef, rewards: ArtifactRef, scorers: dict[str, ArtifactRef]
) -> Result:
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
        tok = load_tok(sft)
        policy = load_causal_lm(ModelSource(path=sft.path))
        val = table(prompts)
        val_prompts = val[val["split"] == "val"]["prompt"].tolist()
        gen = generate(
            policy,
            tok,
            val_prompts,
            cfg.generation,
            ctx.cfg.seed,
            num_beams=cfg.num_beams,
            repetition_penalty=cfg.repetition_penalty,
        )
        targets = np.array(reward_function(ctx.cfg, scorers)(val_prompts, gen))
        head, curve = fit_value_head(prompt_states(policy, tok, val_prompts), targets, cfg, ctx.cfg.seed)
        save_head(head, str(out / "value_head.safetensors"))
        rows = train_rows(rewards)
        unique = rows["prompt"].unique().tolist()
        values = dict(zip(unique, predict_values(head, prompt_states(policy, tok, unique))))
        rows["value"] = rows["prompt"].map(values)
        rows["advantage"] = rows["reward"] - rows["value"]
        write_table(rows, out / TABLE)
        histogram({"advantage": rows["advantage"].to_numpy()}, out / "advantages.png", "A = R - V_ref(x)")
        return {
            "val_prompts": len(val_prompts),
            "val_reward_mean": float(targets.mean()),
            "value_mse_per_epoch": [round(x, 5) for x in curve],
            "train_rows": len(rows),
            "train_reward_mean": float(rows["reward"].mean()),
            "positive_advantage_share": float((rows["advantage"] > 0).mean()),
            "advantage_histogram": "advantages.png",
            "preview": rows.head(5),
        }

    parents = {"sft": sft, "prompts": prompts, "rewards": rewards, **{f"scorer/{c}": r for c, r in scorers.items()}}
    return ctx.build("reference_value", None, parents, build)


def prompts_dataset(task: TaskConfig) -> str:
    """The online algorithms' and the evaluation's prompts: ``policy.prompts``, else the SFT data."""
    return task.policy.prompts or task.sft.data


def _start_source(ctx: Context, sft: ArtifactRef | None) -> ModelSource:
    """Where the policy RL starts from: the SFT artifact, else ``policy.init``."""
    return ModelSource(path=sft.path) if sft is not None else ctx.cfg.policy.init


def _start(ctx: Context, sft: ArtifactRef | None, quantization: str | None = None):
    """The starting policy and its tokenizer."""
    from rlhf_core.models.load import load_policy, load_tokenizer

    source = _start_source(ctx, sft)
    return load_policy(source, quantization), load_tokenizer(source)


def _policy_reads(task: TaskConfig, algorithm: str) -> list[str]:
    """Where the policy starts, and the algorithm's own section (``stages.algorithms``)."""
    return [*START_READS, *([] if algorithm == BASELINE else ALGORITHMS.get(algorithm).reads(task))]


@stage(
    _policy_reads,
    each=policy_partitions,
    uses=lambda task, algorithm: [] if algorithm == BASELINE else [ALGORITHMS.get(algorithm).train],
    spreads=lambda task, algorithm: algorithm != BASELINE and ALGORITHMS.get(algorithm).spreads,
)
def policy(
    ctx: Context,
    algorithm: str,
    sft: ArtifactRef | None,
    value: ArtifactRef | None,
    pairs: ArtifactRef | None,
    prompts: ArtifactRef,
    scorers: dict[str, ArtifactRef],
) -> Result:
    """Fine-tune the SFT reference (or ``policy.init``) with one algorithm; the ``sft`` partition is
    the starting policy itself.

    Offline algorithms learn from the rows of ``reference_value`` (R and A), preference ones
    (dpo, pro) from the pairs, and online ones (ppo, grpo, fg_ppo) from samples on the train
    prompts, scored by the task's R (fg_ppo: the dense reward of ``policy.fg_ppo.rewards``)
    through the same scorers as V_ref and the evaluation.
    """
    from rlhf_core.models.load import save_model

    cfg = ctx.cfg.policy
    if algorithm == BASELINE:
        if sft is not None:
            return sft, {"algorithm": BASELINE, "artifact": sft.path, "content_hash": sft.content_hash}

        def build_start(out: Path, _: Path) -> dict[str, Any]:
            save_model(*_start(ctx, None), out)
            return {"algorithm": BASELINE, "init": str(cfg.init)}

        return ctx.build("policy", BASELINE, {}, build_start, algorithm=algorithm)
    entry = ALGORITHMS.get(algorithm)
    data = {"value": value, "pairs": pairs}.get(entry.learns_from)
    parents = {} if entry.learns_from == "prompts" else {"data": data}
    if entry.learns_from == "prompts" or entry.scored(ctx.cfg):  # it samples prompts and scores them with R
        parents |= {"prompts": prompts, **{f"scorer/{c}": r for c, r in scorers.items()}}

    def build(out: Path, work: Path) -> dict[str, Any]:
        model, tok = _start(ctx, sft, ctx.cfg.compute.quantization)
        return entry.train(
            PolicyRun(ctx, algorithm, model, tok, _start_source(ctx, sft), data, prompts, scorers, out, work)
        )

    return ctx.build("policy", algorithm, {"sft": sft, **parents}, build, algorithm=algorithm)
