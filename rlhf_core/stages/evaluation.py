"""Evaluation stages: samples of each policy, their scores under the task's reward, the leaderboard."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import ModelSource
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table
from rlhf_core.store import ArtifactRef, write_table


@stage(lambda task: ["evaluation.split", "evaluation.generation", "seed"])
def generations(ctx: Context, algorithm: str, policy_ref: ArtifactRef, prompts_ref: ArtifactRef) -> Result:
    """One policy's samples on the evaluation prompts."""
    from rlhf_core.eval.generate import generate
    from rlhf_core.models.load import load_policy

    cfg = ctx.cfg.evaluation

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = table(prompts_ref)
        rows = rows[rows["split"] == cfg.split][["id", "prompt"]].reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"evaluation.split {cfg.split!r}: no prompts of that split in {prompts_ref.path}")
        model = load_policy(ModelSource(path=policy_ref.path))
        rows["completion"] = generate(model, load_tok(policy_ref), rows["prompt"].tolist(), cfg.generation,
                                      ctx.cfg.seed)
        write_table(rows, out / TABLE)
        return {"rows": len(rows), "empty_completions": int((rows["completion"].str.strip() == "").sum()),
                "preview": rows.head(8)}

    return ctx.build("generations", algorithm, {"policy": policy_ref, "prompts": prompts_ref}, build)


@stage(reward_terms)
def evaluation(ctx: Context, algorithm: str, gen_ref: ArtifactRef, scorer_refs: dict[str, ArtifactRef]) -> Result:
    """Every reward component (and its breakdown), R, and distinct-1/2 of one algorithm's samples."""
    from rlhf_core.eval.metrics import distinct_n

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = table(gen_ref)
        prompts, completions = rows["prompt"].tolist(), rows["completion"].tolist()
        rows = pd.concat([rows, reward_function(ctx.cfg, scorer_refs).scores(prompts, completions)], axis=1)
        write_table(rows, out / TABLE)
        numeric = rows.select_dtypes("number").mean().to_dict()
        summary = {"algorithm": algorithm, **{k: float(v) for k, v in numeric.items()},
                   "distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2), "n": len(rows)}
        return {**summary, "summary": summary}

    parents = {"generations": gen_ref, **{f"scorer/{c}": r for c, r in scorer_refs.items()}}
    return ctx.build("evaluation", algorithm, parents, build)


@stage(lambda task: ["evaluation.rank_by", "seed", "policy.overrides"])
def leaderboard(ctx: Context, evaluations: dict[str, ArtifactRef], export: Path) -> Result:
    """One row per algorithm, best first by ``evaluation.rank_by``, each metric with its bootstrap 95%
    interval over prompts and, over several training seeds, its std; swept algorithms at their best
    setting on val. Also exported as CSV to ``export`` (the intervals and the sweep beside it)."""
    from rlhf_core.eval.board import leaderboard as board_tables
    from rlhf_core.eval.plots import bar_chart

    rank_by = ctx.cfg.evaluation.rank_by
    summaries = {key: ref.meta()["metadata"]["summary"] for key, ref in evaluations.items()}
    tables = {key: table(ref) for key, ref in evaluations.items()}
    overrides = {k: dict(v) for k, v in ctx.cfg.policy.overrides.items()}
    parts = board_tables(summaries, tables, rank_by, ctx.cfg.seed, overrides)
    rows = parts["board"]

    def build(out: Path, _: Path) -> dict[str, Any]:
        write_table(rows, out / TABLE)
        for name, frame in parts.items():
            frame.to_csv(out / f"{'leaderboard' if name == 'board' else name}.csv", index=False, float_format="%.4f")
        bar_chart(rows, "algorithm", list(dict.fromkeys([rank_by, "reward"])), out / "leaderboard.png")
        shown = ["algorithm", "setting", "seeds", *(f"{m}{s}" for m in dict.fromkeys([rank_by, "reward"])
                                                    for s in ("", "_lo", "_hi", "_seed_std") if f"{m}{s}" in rows)]
        meta = {"algorithms": len(rows), "best": rows.loc[0, "algorithm"], "table": rows[shown],
                "intervals": parts["intervals"], "plot": "leaderboard.png"}
        return {**meta, "sweep": parts["sweep"]} if not parts["sweep"].empty else meta

    ref, meta = ctx.build("leaderboard", None, evaluations, build)
    export_copy(ref.file("leaderboard.csv"), export)
    return ref, {**meta, "exported_to": str(export)}


def export_copy(src: Path, export: Path) -> None:
    """Copy an artifact's file to a stable path outside the store, atomically; an identical copy is left as it
    is (a run that finds everything in the store writes nothing)."""
    data = src.read_bytes()
    if export.exists() and export.read_bytes() == data:
        return
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_name(f".tmp-{export.name}")
    tmp.write_bytes(data)
    tmp.replace(export)
