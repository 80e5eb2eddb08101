"""Evaluation stages: samples of each policy, their scores under the task's reward, the leaderboard."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import ModelSource
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table
from rlhf_core.store import ArtifactRef, write_table


GENERATION_READS = ["split", "extra_splits", "generation", "num_beams", "repetition_penalty", "samples_per_prompt",
                    "stop_at", "strip_suffixes"]


@stage(lambda task: [f"evaluation.{f}" for f in GENERATION_READS] + ["seed"])
def generations(ctx: Context, algorithm: str, policy_ref: ArtifactRef, prompts_ref: ArtifactRef) -> Result:
    """One policy's samples on the evaluation prompts (every evaluated split, ``samples_per_prompt`` each), with the
    prompts' own columns (references, knowledge) and each sample's token count."""
    from rlhf_core.eval.evaluate import clean_response, evaluation_prompts
    from rlhf_core.eval.generate import generate
    from rlhf_core.models.load import load_policy

    cfg = ctx.cfg.evaluation

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = evaluation_prompts(table(prompts_ref), [cfg.split, *cfg.extra_splits], cfg.samples_per_prompt)
        model, tok = load_policy(ModelSource(path=policy_ref.path)), load_tok(policy_ref)
        raw = generate(model, tok, rows["prompt"].tolist(), cfg.generation, ctx.cfg.seed,
                       num_beams=cfg.num_beams, repetition_penalty=cfg.repetition_penalty)
        rows["completion_tokens"] = [len(ids) for ids in tok(raw, add_special_tokens=False)["input_ids"]]
        rows["completion"] = [clean_response(t, cfg.stop_at, cfg.strip_suffixes) for t in raw]
        write_table(rows, out / TABLE)
        return {"rows": len(rows), "empty_completions": int((rows["completion"].str.strip() == "").sum()),
                "preview": rows[["prompt", "completion"]].head(8)}

    return ctx.build("generations", algorithm, {"policy": policy_ref, "prompts": prompts_ref}, build)


def _evaluation_reads(task) -> list[str]:
    return [*reward_terms(task), "evaluation.split", "evaluation.extra_splits", "evaluation.gold", "evaluation.metrics"]


@stage(_evaluation_reads)
def evaluation(ctx: Context, algorithm: str, gen_ref: ArtifactRef, scorer_refs: dict[str, ArtifactRef]) -> Result:
    """Every reward component (and its breakdown), R and the task's ``evaluation.metrics`` of one algorithm's samples,
    per split, and of the references (``gold``)."""
    from rlhf_core.eval.evaluate import evaluate_group, flat_summary, groups

    cfg = ctx.cfg.evaluation

    def build(out: Path, _: Path) -> dict[str, Any]:
        reward = reward_function(ctx.cfg, scorer_refs)
        results, scored = [], []
        for split, segment, rows in groups(table(gen_ref), [cfg.split, *cfg.extra_splits], cfg.gold):
            rows, values = evaluate_group(rows, reward.scores, reward.scorers, cfg.metrics)
            scored.append(rows.assign(segment=segment))
            results.append((split, segment, values))
        write_table(pd.concat(scored, ignore_index=True), out / TABLE)
        by_group = pd.DataFrame([{"split": s, "segment": g, **v} for s, g, v in results])
        by_group.to_csv(out / "evaluation.csv", index=False, float_format="%.4f")
        summary = {"algorithm": algorithm, **flat_summary(results)}
        return {**summary, "summary": summary, "table": by_group}

    parents = {"generations": gen_ref, **{f"scorer/{c}": r for c, r in scorer_refs.items()}}
    return ctx.build("evaluation", algorithm, parents, build)


@stage(lambda task: ["evaluation.rank_by", "evaluation.split", "evaluation.extra_splits", "sft.model", "policy.init"])
def leaderboard(ctx: Context, evaluations: dict[str, ArtifactRef], export: Path) -> Result:
    """One row per algorithm, best first by ``evaluation.rank_by``; also exported as CSV to ``export``. With several
    evaluated splits or gold rows, every group's values also go to ``aggregate.csv`` beside it, in [LoL]'s layout."""
    from rlhf_core.eval.evaluate import aggregate_table
    from rlhf_core.eval.plots import bar_chart

    cfg = ctx.cfg.evaluation
    rank_by = cfg.rank_by
    summaries = pd.DataFrame([ref.meta()["metadata"]["summary"] for ref in evaluations.values()])
    rows = summaries[[c for c in summaries if " " not in c]]  # the ranked split's own values
    if rank_by not in rows:
        raise ValueError(f"evaluation.rank_by {rank_by!r} is not an evaluated column; have {sorted(rows.columns)}")
    first = ["algorithm", rank_by, *(["reward"] if rank_by != "reward" else [])]
    rows = rows[first + [c for c in rows if c not in first]]
    rows = rows.sort_values(rank_by, ascending=False).reset_index(drop=True)

    grouped = len(summaries.columns) > len(rows.columns)
    start = ctx.cfg.sft.model if ctx.cfg.sft is not None else ctx.cfg.policy.init  # the seed's baseline_model

    def build(out: Path, _: Path) -> dict[str, Any]:
        write_table(rows, out / TABLE)
        rows.to_csv(out / "leaderboard.csv", index=False, float_format="%.4f")
        if grouped:
            aggregate_table(summaries, ctx.task, start.hub_id or start.path or "init", [*cfg.extra_splits, cfg.split]
                            ).to_csv(out / "aggregate.csv", index=False, float_format="%.3f")
        bar_chart(rows, "algorithm", list(dict.fromkeys([rank_by, "reward"])), out / "leaderboard.png")
        return {"algorithms": len(rows), "best": rows.loc[0, "algorithm"], "table": rows, "plot": "leaderboard.png"}

    ref, meta = ctx.build("leaderboard", None, evaluations, build)
    export_copy(ref.file("leaderboard.csv"), export)
    if grouped:
        export_copy(ref.file("aggregate.csv"), export.with_name("aggregate.csv"))
    return ref, {**meta, "exported_to": str(export)}


def export_copy(src: Path, export: Path) -> None:
    """Copy an artifact's file to a stable path outside the store, atomically."""
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_name(f".tmp-{export.name}")
    tmp.write_bytes(src.read_bytes())
    tmp.replace(export)
