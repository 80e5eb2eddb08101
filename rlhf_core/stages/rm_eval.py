"""Every trained RM judged against truth: its seed's own metric, and (demo) the gold judge.

    gold_probe          responses the gold judge grades: the logged responses of the held-out
                        prompts, and fresh samples of the SFT model on them (no training pair was
                        built from either)
    reward_model_eval   [rm]  the kind's seed metric on its held-out rows (docs/sources.md §5):
                        pair accuracy, [CRS] ranking pos/neg accuracy and mean scores, [CRS]
                        absolute MSE/MAE overall and by bin, [FG] token P/R/F1/accuracy against
                        the trivial baselines; and on the probe, Spearman with gold and pairwise
                        accuracy against gold, per probe source; for a demo ArmoRM, its weight on
                        each objective against the gold judge's (``gating_vs_gold``)
    reward_model_board  one row per RM, exported to ``data/artifacts/<task>/reward_models.csv``

The sampled probe is where generalisation shows: its responses come from another distribution
than the logged responses every RM was trained on.
"""

from __future__ import annotations

import functools
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.stages.base import TABLE, Context, Result, stage, table
from rlhf_core.stages.reward_models import needs_gold, read_spec, rm_names
from rlhf_core.stages.rm_kinds import split_rows
from rlhf_core.store import ArtifactRef, write_table

PROBE_SOURCES = ("logged", "sampled")
BOARD_COLUMNS = (
    "heldout_metric",
    "heldout_value",
    "gold_spearman_logged",
    "gold_pair_acc_logged",
    "gold_spearman_sampled",
    "gold_pair_acc_sampled",
    "gating_gold_cosine",
    "gating_gold_spearman",
    "effect_gold_cosine",
)


@stage(lambda task: ["reward_model_eval", "seed", "gold", "world"])
def gold_probe(ctx: Context, responses: ArtifactRef, sft: ArtifactRef, world: ArtifactRef) -> Result:
    """The logged held-out responses and fresh SFT samples on the same prompts, graded by the gold judge."""
    from rlhf_core.config import GenerationConfig, ModelSource
    from rlhf_core.demo.gold import judge
    from rlhf_core.eval.generate import generate
    from rlhf_core.models.load import load_causal_lm
    from rlhf_core.stages.base import load_tok

    cfg = ctx.cfg.reward_model_eval

    def build(out: Path, _: Path) -> dict[str, Any]:
        logged = split_rows(responses, cfg.split)[["prompt", "completion"]].assign(source="logged")
        prompts = sorted(logged["prompt"].unique())
        policy, tok = load_causal_lm(ModelSource(path=sft.path)), load_tok(sft)
        gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, do_sample=True)
        asked = [p for p in prompts for _ in range(cfg.samples_per_prompt)]
        sampled = pd.DataFrame(
            {"prompt": asked, "completion": generate(policy, tok, asked, gen, ctx.cfg.seed), "source": "sampled"}
        )
        rows = pd.concat([logged, sampled], ignore_index=True)
        gold = judge(table(world), ctx.cfg.world, ctx.cfg.gold)
        rows = pd.concat([rows, gold.components(rows["prompt"].tolist(), rows["completion"].tolist())], axis=1)
        write_table(rows, out / TABLE)
        means = rows.groupby("source")["gold"].mean().round(4).to_dict()
        return {"prompts": len(prompts), "rows": len(rows), "gold_mean_by_source": means, "preview": rows.head(5)}

    return ctx.build("gold_probe", None, {"responses": responses, "sft": sft, "world": world}, build)


@stage(
    lambda task, name: [f"reward_models.{name}", *(["gold"] if task.reward_models[name].kind == "armo" else [])],
    each=rm_names,
)
def reward_model_eval(
    ctx: Context, name: str, rm: ArtifactRef, data: dict[str, ArtifactRef], probe: ArtifactRef | None
) -> Result:
    """Held-out metrics of RM ``name``, and its agreement with the gold judge when there is a probe."""
    from rlhf_core.rewards.trained_rm import trained_reward_model

    spec = ctx.cfg.reward_models[name]

    def build(out: Path, _: Path) -> dict[str, Any]:
        # loaded once, and only where needed: a table-trained ArmoRM's held-out pairs need no backbone
        load_scorer = functools.cache(lambda: trained_reward_model(str(rm.dir), progress=False))
        # ArmoRM is judged on its held-out preference pairs; every other kind on its own data's.
        held = split_rows(data[spec.pairs or spec.data], spec.eval_split)
        if spec.precomputed_embeddings:  # pairs given as embeddings: the head alone scores them
            from rlhf_core.eval.rm_metrics import pair_accuracy
            from rlhf_core.train.armo_rm import table_scores

            scores = table_scores(rm.dir, read_spec(rm), held)
            heldout = {"pair_accuracy": pair_accuracy(scores[:, 0], scores[:, 1])}
        else:
            heldout = heldout_metrics(spec.kind, load_scorer(), held, rm)
        summary: dict[str, Any] = {"name": name, "kind": spec.kind, **_headline(spec.kind, heldout)}
        meta: dict[str, Any] = {"heldout": heldout, "heldout_rows": len(held)}
        if probe is not None:
            probe_rows = table(probe)
            gold = gold_metrics(load_scorer(), spec.kind, probe_rows)
            summary.update(gold)
            meta["gold"] = gold
            if spec.kind == "armo" and all(o in probe_rows for o in spec.objectives):
                meta["objectives_vs_gold"] = objective_agreement(load_scorer(), list(spec.objectives), probe_rows)
        if needs_gold(ctx.cfg, name):
            from rlhf_core.demo.gold import signed_weights

            agreement, meta["gating_vs_gold"] = gating_vs_gold(
                load_scorer(), list(spec.objectives), held, signed_weights(ctx.cfg.gold), probe
            )
            summary.update(agreement)
        write_table(pd.DataFrame([summary]), out / TABLE)
        return {**meta, "summary": summary}

    parents = {"rm": rm, "probe": probe, **{f"data/{d}": r for d, r in data.items()}}
    return ctx.build("reward_model_eval", name, parents, build)


def objective_agreement(scorer, objectives: list[str], probe: pd.DataFrame) -> pd.DataFrame:
    """Per ArmoRM objective: Spearman of its debiased reward with the gold component of the same
    name, on each probe source (how well stage 1 recovered the truth it was fitted to)."""
    from rlhf_core.eval.rm_metrics import spearman

    rows = []
    for source in PROBE_SOURCES:
        part = probe[probe["source"] == source]
        rewards = scorer.objective_rewards(part["prompt"].tolist(), part["completion"].tolist())
        rows += [
            {
                "objective": o,
                "source": source,
                "spearman": spearman(rewards[:, k], part[o].to_numpy(float))
                if np.ptp(part[o].to_numpy(float)) > 0
                else float("nan"),
            }
            for k, o in enumerate(objectives)
        ]
    return pd.DataFrame(rows)


def gating_vs_gold(
    scorer, objectives: list[str], held: pd.DataFrame, gold_weights: dict[str, float], probe_ref: ArtifactRef | None
) -> tuple[dict[str, float], pd.DataFrame]:
    """An ArmoRM's weight on each objective against the gold judge's, which combines the same
    components (docs/sources.md §5.7): the gating coefficients ``c = T · mean(g)`` over the
    held-out prompts (what the score multiplies each probe reward by), and, with a probe, the
    end-to-end effect of each gold component on the score (a least-squares fit). Both are compared
    with the signed gold weights by cosine similarity and Spearman; the table has them per
    objective, also as shares of their absolute sum (``softmax`` gating cannot weigh an objective
    negatively, so a penalised gold component is matched at best by a coefficient of 0)."""
    from rlhf_core.eval.rm_metrics import gating_coefficients, linear_effects, weight_agreement

    missing = [o for o in objectives if o not in gold_weights]
    if missing:
        raise ValueError(f"armo: objective(s) {missing} are not gold components {sorted(gold_weights)}")
    first = held.drop_duplicates("prompt")
    gates = scorer.gating(first["prompt"].tolist(), first["chosen"].tolist())
    coeffs = gating_coefficients(gates, scorer.armo.transform.cpu().numpy())
    gold = np.asarray([gold_weights[o] for o in objectives], dtype=float)
    per = pd.DataFrame(
        {
            "objective": objectives,
            "gating_mean": gates.mean(axis=0),
            "coefficient": coeffs,
            "coefficient_share": coeffs / np.abs(coeffs).sum(),
            "gold_weight": gold,
            "gold_share": gold / np.abs(gold).sum(),
        }
    )
    out = {f"gating_gold_{k}": v for k, v in weight_agreement(coeffs, gold).items()} | {"gating_prompts": len(first)}
    if probe_ref is not None:
        probe = table(probe_ref)
        effects = linear_effects(
            scorer(probe["prompt"].tolist(), probe["completion"].tolist()), probe[objectives].to_numpy(dtype=float)
        )
        per["score_effect"] = effects
        out |= {f"effect_gold_{k}": v for k, v in weight_agreement(effects, gold).items()}
    return out, per


def heldout_metrics(kind: str, scorer, rows: pd.DataFrame, rm_ref: ArtifactRef) -> dict[str, Any]:
    """The seed metric of ``kind`` on its held-out rows (docs/sources.md §5.1-§5.3, §5.5)."""
    from rlhf_core.eval import rm_metrics

    if kind == "fg_token":  # token-label rows: words and tags, no prompt column
        return _token_metrics(scorer, rows, read_spec(rm_ref))
    prompts = rows["prompt"].tolist()
    if kind in ("bradley_terry", "fg_sequence_preference", "armo"):
        chosen, rejected = scorer(prompts, rows["chosen"].tolist()), scorer(prompts, rows["rejected"].tolist())
        return {"pair_accuracy": rm_metrics.pair_accuracy(chosen, rejected)}
    if kind == "pairwise_preference" and "completion" in rows:  # rows already in the A/B format
        from rlhf_core.train.pair_pm import answer_accuracy

        return {"pair_accuracy": answer_accuracy(scorer.model, scorer.tokenizer, scorer.spec, rows)}
    if kind == "pairwise_preference":
        p = scorer.preference(prompts, rows["chosen"].tolist(), rows["rejected"].tolist())
        return {"pair_accuracy": float(np.mean(np.asarray(p) > 0.5))}
    if kind == "crs_ranking":
        flat_p = [p for p, rs in zip(prompts, rows["completions"]) for _ in rs]
        flat_r = [r for rs in rows["completions"] for r in rs]
        bounds = np.cumsum([0] + [len(rs) for rs in rows["completions"]]).tolist()
        return rm_metrics.ranking_metrics(scorer(flat_p, flat_r), bounds)
    if kind == "crs_absolute":
        logits = np.asarray(scorer(prompts, rows["completion"].tolist()))
        return rm_metrics.absolute_metrics(1 / (1 + np.exp(-logits)), rows["score"].to_numpy(dtype=float))
    raise ValueError(f"no held-out metric for kind {kind!r}")


def _token_metrics(scorer, rows: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Any]:
    from rlhf_core.eval.rm_metrics import labelled_tags, token_error_baselines, token_error_metrics
    from rlhf_core.train.rm_token import NO_ERROR, TokenLabels, encode_rows, marker_logits

    labels = TokenLabels.of(spec["label_type"])
    ids, targets = encode_rows(scorer.tokenizer, rows, labels, spec["segmentation"], spec["marker"], spec["max_length"])
    pred, gold = [], []
    for z, y in zip(marker_logits(scorer.model, scorer.tokenizer, ids), targets):
        p, g = labelled_tags(z[None], np.asarray(y)[None], labels.names, restrict_to=(labels.error, NO_ERROR))
        pred += p
        gold += g
    baselines = token_error_baselines(gold, labels.error)
    return {
        **token_error_metrics(pred, gold),
        **{f"{b}_{k}": v for b, m in baselines.items() for k, v in m.items() if k in ("accuracy", "error_f1")},
    }


def _headline(kind: str, heldout: dict[str, Any]) -> dict[str, Any]:
    """The one held-out number a board row shows for this kind."""
    key = {"crs_absolute": "mse", "fg_token": "error_f1"}.get(
        kind, "pair_accuracy" if "pair_accuracy" in heldout else "accuracy"
    )
    return {"heldout_metric": key, "heldout_value": heldout[key]}


def within_prompt_pairs(probe: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (a, b) of every pair of responses to the same prompt from the same source."""
    a, b = [], []
    for _, idx in probe.groupby(["source", "prompt"]).indices.items():
        for i, j in combinations(sorted(idx), 2):
            a.append(i)
            b.append(j)
    return np.asarray(a, dtype=int), np.asarray(b, dtype=int)


def gold_metrics(scorer, kind: str, probe: pd.DataFrame) -> dict[str, float]:
    """Per probe source: Spearman of the RM's scores with gold, and pairwise accuracy against gold
    on the within-prompt pairs (gold ties left out)."""
    from rlhf_core.eval.reward_bench import pairwise_correct
    from rlhf_core.eval.rm_metrics import gold_pair_accuracy, spearman

    out: dict[str, float] = {}
    for source in PROBE_SOURCES:
        rows = probe[probe["source"] == source].reset_index(drop=True)
        a, b = within_prompt_pairs(rows)
        g = rows["gold"].to_numpy(dtype=float)
        prompts, texts = rows["prompt"].tolist(), rows["completion"].tolist()
        out[f"gold_pairs_{source}"] = int(np.sum(g[a] != g[b]))  # pairs gold does not tie; none: NaN metrics
        if not out[f"gold_pairs_{source}"]:
            out |= {f"gold_pair_acc_{source}": float("nan"), f"gold_spearman_{source}": float("nan")}
            continue
        if kind == "pairwise_preference":  # P(a preferred) against 0.5: no pointwise score to correlate
            p = np.asarray(scorer.preference([prompts[i] for i in a], [texts[i] for i in a], [texts[j] for j in b]))
            keep = g[a] != g[b]
            correct = pairwise_correct(np.where(g[a] > g[b], p, 1 - p)[keep], 0.5)
            out[f"gold_pair_acc_{source}"] = float(correct.mean())
            continue
        s = np.asarray(scorer(prompts, texts), dtype=float)
        # An RM that gives every response one score has no rank correlation: reported as NaN.
        out[f"gold_spearman_{source}"] = spearman(s, g) if np.ptp(s) > 0 and np.ptp(g) > 0 else float("nan")
        out[f"gold_pair_acc_{source}"] = gold_pair_accuracy(s[a], s[b], g[a], g[b])
    return out


@stage(lambda task: [])
def reward_model_board(ctx: Context, evaluations: dict[str, ArtifactRef], export: Path) -> Result:
    """One row per RM (its held-out headline and its agreement with gold); CSV, table and plot."""
    from rlhf_core.eval.plots import bar_chart
    from rlhf_core.stages.evaluation import export_copy

    rows = pd.DataFrame([ref.meta()["metadata"]["summary"] for _, ref in sorted(evaluations.items())])
    rows = rows[["name", "kind", *[c for c in BOARD_COLUMNS if c in rows]]]

    def build(out: Path, _: Path) -> dict[str, Any]:
        write_table(rows, out / TABLE)
        rows.to_csv(out / "reward_models.csv", index=False, float_format="%.4f")
        plotted = [c for c in ("gold_pair_acc_logged", "gold_pair_acc_sampled") if c in rows]
        meta: dict[str, Any] = {"reward_models": len(rows), "table": rows}
        if plotted:
            bar_chart(rows.fillna(0.0), "name", plotted, out / "reward_models.png")
            meta["plot"] = "reward_models.png"
        return meta

    ref, meta = ctx.build("reward_models", None, evaluations, build)  # the asset's name: --rebuild finds it
    export_copy(ref.file("reward_models.csv"), export)
    return ref, {**meta, "exported_to": str(export)}
