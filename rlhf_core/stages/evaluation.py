"""Evaluation stages: samples of each policy, their scores under the task's reward, the leaderboard."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import ModelSource
from rlhf_core.eval.registry import metric_code
from rlhf_core.stages.annotation import reward_function, reward_terms
from rlhf_core.stages.base import TABLE, Context, Result, load_tok, stage, table
from rlhf_core.store import ArtifactRef, write_table

LEGEND = "leaderboard_legend.csv"  # column, meaning: beside the leaderboard in its artifact and its export


GENERATION_READS = [
    "split",
    "extra_splits",
    "generation",
    "num_beams",
    "repetition_penalty",
    "samples_per_prompt",
    "stop_at",
    "strip_suffixes",
]


@stage(lambda task: [f"evaluation.{f}" for f in GENERATION_READS] + ["seed"])
def generations(ctx: Context, algorithm: str, policy: ArtifactRef, prompts: ArtifactRef) -> Result:
    """One policy's samples on the evaluation prompts (every evaluated split, ``samples_per_prompt`` each), with the
    prompts' own columns (references, knowledge) and each sample's token count; beside them, the policy's
    validation history (``validation.csv``) when it kept one."""
    from rlhf_core.eval.evaluate import clean_response, evaluation_prompts
    from rlhf_core.eval.generate import generate
    from rlhf_core.models.load import load_policy
    from rlhf_core.train.validation import VALIDATION_FILE

    cfg = ctx.cfg.evaluation

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = evaluation_prompts(table(prompts), [cfg.split, *cfg.extra_splits], cfg.samples_per_prompt)
        model, tok = load_policy(ModelSource(path=policy.path)), load_tok(policy)
        raw = generate(
            model,
            tok,
            rows["prompt"].tolist(),
            cfg.generation,
            ctx.cfg.seed,
            num_beams=cfg.num_beams,
            repetition_penalty=cfg.repetition_penalty,
        )
        rows["completion_tokens"] = [len(ids) for ids in tok(raw, add_special_tokens=False)["input_ids"]]
        rows["completion"] = [clean_response(t, cfg.stop_at, cfg.strip_suffixes) for t in raw]
        write_table(rows, out / TABLE)
        # The policy's validation history travels with its samples, so the leaderboard never fetches weights.
        history = policy.dir / VALIDATION_FILE
        if history.exists():
            shutil.copyfile(policy.file(VALIDATION_FILE), out / VALIDATION_FILE)
        return {
            "rows": len(rows),
            "empty_completions": int((rows["completion"].str.strip() == "").sum()),
            "preview": rows[["prompt", "completion"]].head(8),
        }

    return ctx.build("generations", algorithm, {"policy": policy, "prompts": prompts}, build)


def _evaluation_reads(task) -> list[str]:
    return [*reward_terms(task), "evaluation.split", "evaluation.extra_splits", "evaluation.gold", "evaluation.metrics"]


@stage(_evaluation_reads, uses=lambda task: metric_code(task.evaluation.metrics))
def evaluation(ctx: Context, algorithm: str, gen: ArtifactRef, scorers: dict[str, ArtifactRef]) -> Result:
    """Every reward component (and its breakdown), R and the task's ``evaluation.metrics`` of one algorithm's samples,
    per split, and of the references (``gold``)."""
    from rlhf_core.eval.evaluate import evaluate_group, flat_summary, groups

    cfg = ctx.cfg.evaluation

    def build(out: Path, _: Path) -> dict[str, Any]:
        reward = reward_function(ctx.cfg, scorers)
        results, scored = [], []
        for split, segment, rows in groups(table(gen), [cfg.split, *cfg.extra_splits], cfg.gold):
            rows, values = evaluate_group(rows, reward.scores, reward.scorers, cfg.metrics)
            scored.append(rows.assign(segment=segment))
            results.append((split, segment, values))
        write_table(pd.concat(scored, ignore_index=True), out / TABLE)
        by_group = pd.DataFrame([{"split": s, "segment": g, **v} for s, g, v in results])
        by_group.to_csv(out / "evaluation.csv", index=False, float_format="%.4f")
        summary = {"algorithm": algorithm, **flat_summary(results)}
        return {**summary, "summary": summary, "table": by_group}

    parents = {"generations": gen, **{f"scorer/{c}": r for c, r in scorers.items()}}
    return ctx.build("evaluation", algorithm, parents, build)


def _leaderboard_reads(task) -> list[str]:
    # The legend names each component's scorer, weight, transform and trained RM, not its parameters.
    components = task.annotation.scorers if task.annotation else {}
    legend = [f"annotation.scorers.{c}.{f}" for c in components for f in ("scorer", "weight", "transform", "partition")]
    legend = legend or ["annotation"]  # none: the legend finds no section
    return [
        "evaluation.rank_by",
        "evaluation.split",
        "evaluation.extra_splits",
        "evaluation.metrics",  # the legend names each metric and its parameters
        "policy.validation.metric",
        "seed",
        "policy.overrides",
        "sft.model",
        "policy.init",
        *legend,
    ]


@stage(_leaderboard_reads)
def leaderboard(
    ctx: Context, evaluations: dict[str, ArtifactRef], generations: dict[str, ArtifactRef], export: Path
) -> Result:
    """One row per algorithm, best first by ``evaluation.rank_by``, each metric with its 95%
    interval over prompts and, over several training seeds, its std; swept algorithms at their best
    setting on val. Also exported as CSV to ``export`` (the intervals and the sweep beside it, and what
    each column means: ``leaderboard_legend.csv``). With several evaluated splits or gold rows, every
    group's values also go to ``aggregate.csv`` beside it, in [LoL]'s layout, with the best and worst
    points of each policy's validation history (carried by its ``generations``) when the task validates
    while training."""
    from rlhf_core.eval.board import leaderboard as board_tables
    from rlhf_core.eval.evaluate import GEN, aggregate_table
    from rlhf_core.eval.legend import leaderboard_legend
    from rlhf_core.eval.plots import bar_chart

    cfg = ctx.cfg.evaluation
    rank_by = cfg.rank_by
    full = {key: ref.meta()["metadata"]["summary"] for key, ref in evaluations.items()}
    validation = ctx.cfg.policy.validation
    metric = validation.metric if validation is not None else None
    # The ranked split's own values (a key with a space names another split's or the references' value).
    summaries = {key: {k: v for k, v in s.items() if " " not in k} for key, s in full.items()}
    tables = {key: _ranked_rows(table(ref), cfg.split, GEN) for key, ref in evaluations.items()}
    overrides = {k: dict(v) for k, v in ctx.cfg.policy.overrides.items()}
    parts = board_tables(summaries, tables, rank_by, ctx.cfg.seed, overrides)
    rows = parts["board"]
    summaries_frame = pd.DataFrame([{**full[key], **_validation_points(generations.get(key), metric)} for key in full])

    grouped = any(" " in k for s in full.values() for k in s)
    start = ctx.cfg.sft.model if ctx.cfg.sft is not None else ctx.cfg.policy.init  # the seed's baseline_model

    def build(out: Path, _: Path) -> dict[str, Any]:
        legend = leaderboard_legend(ctx.cfg, list(rows.columns))
        write_table(rows, out / TABLE)
        for name, frame in parts.items():
            frame.to_csv(out / f"{'leaderboard' if name == 'board' else name}.csv", index=False, float_format="%.4f")
        pd.DataFrame(list(legend.items()), columns=["column", "meaning"]).to_csv(out / LEGEND, index=False)
        if grouped:
            aggregate_table(
                summaries_frame, ctx.task, start.hub_id or start.path or "init", [*cfg.extra_splits, cfg.split], metric
            ).to_csv(out / "aggregate.csv", index=False, float_format="%.3f", na_rep="NA")
        bar_chart(rows, "algorithm", list(dict.fromkeys([rank_by, "reward"])), out / "leaderboard.png")
        shown = [
            "algorithm",
            "setting",
            "seeds",
            *(
                f"{m}{s}"
                for m in dict.fromkeys([rank_by, "reward"])
                for s in ("", "_lo", "_hi", "_seed_std")
                if f"{m}{s}" in rows
            ),
        ]
        meta = {
            "algorithms": len(rows),
            "best": rows.loc[0, "algorithm"],
            "ranked_by": rank_by,
            "table": rows[shown],
            "legend": list(legend.items()),  # pairs: meta.json sorts a mapping
            "intervals": parts["intervals"],
            "plot": "leaderboard.png",
        }
        return {**meta, "sweep": parts["sweep"]} if not parts["sweep"].empty else meta

    parents = {**evaluations, **{f"generations/{k}": r for k, r in generations.items()}} if metric else evaluations
    ref, meta = ctx.build("leaderboard", None, parents, build)
    export_copy(ref.file("leaderboard.csv"), export)
    export_copy(ref.file(LEGEND), export.with_name(LEGEND))
    if grouped:
        export_copy(ref.file("aggregate.csv"), export.with_name("aggregate.csv"))
    return ref, {**meta, "exported_to": str(export)}


def _validation_points(gen: ArtifactRef | None, metric: str | None) -> dict[str, Any]:
    """The best and worst validation points of ``metric`` in the history of the policy that sampled ``gen``;
    none for a policy that kept no history (the starting policy, an algorithm that does not validate) or a
    task without a metric."""
    from rlhf_core.eval.evaluate import best_and_worst
    from rlhf_core.train.validation import VALIDATION_FILE

    if metric is None or gen is None or not (gen.dir / VALIDATION_FILE).exists():
        return {}
    return best_and_worst(pd.read_csv(gen.file(VALIDATION_FILE)), metric)


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


def _ranked_rows(rows: pd.DataFrame, split: str, segment: str) -> pd.DataFrame:
    """The rows of the ranked split's generations (an evaluation table also holds other splits and the references)."""
    if "segment" in rows:
        rows = rows[(rows["segment"] == segment) & (rows["split"] == split)]
    return rows.reset_index(drop=True)
