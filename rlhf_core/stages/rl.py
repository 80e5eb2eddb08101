"""RL stages: the A-LoL reference value fitted to the task's reward, and one policy per algorithm."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.config import ModelSource, PolicyConfig, TaskConfig
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table, train_rows
from rlhf_core.store import ArtifactRef, write_table

BASELINE = "sft"  # the policy partition that is the SFT reference itself, untouched by RL
# Every policy setting but the list of algorithms, which only says which partitions exist.
POLICY_READS = [f"policy.{f.name}" for f in dataclasses.fields(PolicyConfig) if f.name != "algorithms"] + ["compute"]


def policy_partitions(task: TaskConfig) -> list[str]:
    return [BASELINE, *task.policy.algorithms]


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


@stage(lambda task: POLICY_READS)
def policy(ctx: Context, algorithm: str, sft_ref: ArtifactRef, value_ref: ArtifactRef, pairs_ref: ArtifactRef) -> Result:
    """Fine-tune the SFT reference with one algorithm; the ``sft`` partition is the reference itself."""
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import load_causal_lm, save_model
    from rlhf_core.train.losses import OFFLINE_ALGORITHMS, PREFERENCE_ALGORITHMS
    from rlhf_core.train.offline import train_dpo, train_offline

    if algorithm == BASELINE:
        return sft_ref, {"algorithm": BASELINE, "artifact": sft_ref.path, "content_hash": sft_ref.content_hash}
    if algorithm not in OFFLINE_ALGORITHMS + PREFERENCE_ALGORITHMS:
        raise ValueError(f"policy.algorithms: unknown algorithm {algorithm!r}; "
                         f"known: {OFFLINE_ALGORITHMS + PREFERENCE_ALGORITHMS}")
    cfg = ctx.cfg.policy
    preference = algorithm in PREFERENCE_ALGORITHMS
    data_ref = pairs_ref if preference else value_ref  # offline rows carry R and A from reference_value

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok = load_tok(sft_ref)
        model = load_causal_lm(ModelSource(path=sft_ref.path), ctx.cfg.compute.quantization)
        rows = train_rows(data_ref)
        if preference:
            result = train_dpo(model, tok, rows, cfg, work, reference_free=algorithm == "dpo_ref_free",
                               compute=ctx.cfg.compute)
        else:
            result = train_offline(model, tok, rows, algorithm, cfg.train, work, cfg, compute=ctx.cfg.compute)
        save_model(result.model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", f"{algorithm} loss")
        last = result.history[-1]
        return {"algorithm": algorithm, "train_rows": len(rows), "steps": result.steps,
                "final_loss": last["loss"], "loss_curve": "loss_curve.png",
                **{k: v for k, v in last.items() if k not in ("step", "loss", "lr")}}

    return ctx.build("policy", algorithm, {"sft": sft_ref, "data": data_ref}, build, algorithm=algorithm)
