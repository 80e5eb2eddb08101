"""[RF] RewardBench: trained reward models scored on RewardBench pairs (docs/sources.md §7.5).

Per example, a scalar RM is correct when r(chosen) > r(rejected) (a tie is half right); the
pair-PM when its P(chosen), averaged over both orders, is above 0.5. Subset accuracies are
weighted into the four section scores by ``rlhf_core.eval.reward_bench``; the overall score is
their unweighted mean (reported only when all four sections are present).

Every RM is scored through the ``reward_model`` scorer on the RewardBench rows, except an ArmoRM
trained on precomputed embeddings: as in the seed's stage 2, its head scores RewardBench's own
embedding table (``reward_bench.embeddings``, made by the same backbone; pairs that table dropped
or quarantined are not scored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.stages.base import TABLE, Context, Result, stage, table
from rlhf_core.store import ArtifactRef, write_table


def example_correct(scorer, kind: str, rows: pd.DataFrame) -> np.ndarray:
    """RewardBench correctness (1, 0.5 on a tie, 0) of every row."""
    from rlhf_core.eval.reward_bench import pairwise_correct

    prompts, chosen, rejected = rows["prompt"].tolist(), rows["chosen"].tolist(), rows["rejected"].tolist()
    if kind == "pairwise_preference":
        return pairwise_correct(scorer.preference(prompts, chosen, rejected), 0.5)
    return pairwise_correct(scorer(prompts, chosen), scorer(prompts, rejected))


def embedded_correct(rm_ref: ArtifactRef, rows: pd.DataFrame) -> np.ndarray:
    """Correctness of a precomputed-embeddings ArmoRM on an embedding table (``embedding`` and
    ``prompt_embedding`` of [chosen, rejected])."""
    from rlhf_core.eval.reward_bench import pairwise_correct
    from rlhf_core.stages.reward_models import read_spec
    from rlhf_core.train.armo_rm import table_scores

    scores = table_scores(rm_ref.dir, read_spec(rm_ref), rows)
    return pairwise_correct(scores[:, 0], scores[:, 1])


def _embedded(task) -> list[str]:
    """The configured RMs scored on RewardBench's embeddings (ArmoRMs trained on embedding tables)."""
    return [n for n in task.reward_bench.models if task.reward_models[n].precomputed_embeddings]


def _reads(task) -> list[str]:
    tables = [task.reward_bench.embeddings, *(task.reward_models[n].pairs for n in _embedded(task))]
    return [
        "reward_bench",
        *(
            f"reward_models.{n}.{k}"
            for n in task.reward_bench.models
            for k in ("kind", "precomputed_embeddings", "pairs")
        ),
        *(f"datasets.{d}" for d in tables if d and len(tables) > 1),
    ]  # their backbones must agree


@stage(_reads)
def reward_bench(
    ctx: Context, rm: dict[str, ArtifactRef], data: ArtifactRef, embeddings: ArtifactRef | None = None
) -> Result:
    """Section scores and the overall score of each configured RM; per-subset accuracies in ``subsets.parquet``."""
    from rlhf_core.eval.plots import bar_chart
    from rlhf_core.eval.reward_bench import (
        EXAMPLE_COUNTS,
        SECTIONS,
        SEED_EXAMPLE_COUNTS,
        overall_score,
        section_scores,
        subset_accuracy,
    )
    from rlhf_core.rewards.trained_rm import trained_reward_model
    from rlhf_core.stages.rm_kinds import check_same_backbone

    cfg = ctx.cfg.reward_bench
    counts = EXAMPLE_COUNTS if cfg.counts == "official" else SEED_EXAMPLE_COUNTS
    embedded = _embedded(ctx.cfg)
    parents = {f"rm/{n}": rm[n] for n in cfg.models}
    if embedded:  # scored on embeddings by the backbone they were trained on
        if embeddings is None:
            raise ValueError(f"reward_bench: {embedded} score RewardBench's embeddings; none were given")
        check_same_backbone(
            ctx.cfg.datasets,
            [cfg.embeddings, *(ctx.cfg.reward_models[n].pairs for n in embedded)],
            ("model", "strip_bos_text", "token_pattern"),
            "reward_bench",
        )
        parents["embeddings"] = embeddings

    def build(out: Path, _: Path) -> dict[str, Any]:
        texts = table(data)
        board, subsets = [], []
        for name in cfg.models:
            kind = ctx.cfg.reward_models[name].kind
            if name in embedded:
                rows = table(embeddings)
                correct = embedded_correct(rm[name], rows)
            else:
                rows = texts
                correct = example_correct(trained_reward_model(str(rm[name].dir), progress=False), kind, rows)
            accuracy = subset_accuracy(rows["subset"], correct)
            sections = section_scores(accuracy, counts)
            overall = overall_score(sections) if set(sections) == set(SECTIONS) else float("nan")
            board.append({"model": name, "kind": kind, "examples": len(rows), **sections, "overall": overall})
            subsets += [{"model": name, "subset": s, "accuracy": a} for s, a in sorted(accuracy.items())]
        board_df, subsets_df = pd.DataFrame(board), pd.DataFrame(subsets)
        write_table(board_df, out / TABLE)
        write_table(subsets_df, out / "subsets.parquet")
        bar_chart(board_df.fillna(0.0), "model", [s for s in SECTIONS if s in board_df], out / "reward_bench.png")
        return {
            "examples": len(texts),
            "counts": cfg.counts,
            "table": board_df,
            "subsets": subsets_df,
            "plot": "reward_bench.png",
        }

    return ctx.build("reward_bench", None, {**parents, "data": data}, build)
