"""A task's evaluation from its config: the prompts to sample, the response clean-up, the groups of rows each
metric reads (split x gen/gold), and the flat summary the leaderboard lays out (docs/sources.md §7)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from rlhf_core.eval.registry import EvalGroup, compute_metrics

GEN, GOLD = "gen", "gold"


def evaluation_prompts(prompts: pd.DataFrame, splits: list[str], samples_per_prompt: int) -> pd.DataFrame:
    """The prompts of ``splits`` with their own columns (the reference ``completion`` renamed ``reference``),
    each repeated ``samples_per_prompt`` times with its ``sample`` index."""
    rows = prompts[prompts["split"].isin(splits)].rename(columns={"completion": "reference"})
    missing = [s for s in splits if not (rows["split"] == s).any()]
    if missing:
        raise ValueError(
            f"evaluation: no prompts of split(s) {missing}; the prompts table has {sorted(prompts['split'].unique())}"
        )
    rows = rows.reset_index(drop=True)
    return pd.concat([rows.assign(sample=k) for k in range(samples_per_prompt)], ignore_index=True)


def clean_response(text: str, stop_at: list[str], strip_suffixes: list[str]) -> str:
    """``text`` up to the first of ``stop_at``, stripped, less one of ``strip_suffixes`` at its end, stripped again
    ([LoL] HHA: cut at the next human turn, drop a trailing ``###``; docs/sources.md §7.3)."""
    cuts = [i for i in (text.find(s) for s in stop_at) if i >= 0]
    text = text[: min(cuts)] if cuts else text
    text = text.strip()
    for suffix in strip_suffixes:
        if suffix and text.endswith(suffix):
            return text[: -len(suffix)].strip()
    return text


def groups(rows: pd.DataFrame, splits: list[str], gold: bool) -> list[tuple[str, str, pd.DataFrame]]:
    """``(split, segment, rows)``: the generations of each split and, with ``gold``, the references (once per
    prompt) as the text under evaluation."""
    out = []
    for split in splits:
        part = rows[rows["split"] == split].reset_index(drop=True)
        out.append((split, GEN, part))
        if gold:
            if "reference" not in part:
                raise ValueError("evaluation.gold: the prompts table has no reference completion column")
            refs = part[part["sample"] == 0].drop(columns=["completion", "completion_tokens"], errors="ignore")
            out.append((split, GOLD, refs.assign(completion=refs["reference"]).reset_index(drop=True)))
    return out


def evaluate_group(
    rows: pd.DataFrame,
    score: Callable[[list[str], list[str]], pd.DataFrame],
    scorers: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score one group with the task's reward components, then summarise it: the mean of every component and
    breakdown column and of R, then every configured metric."""
    prompts, completions = rows["prompt"].tolist(), rows["completion"].tolist()
    scores = score(prompts, completions)
    scored = pd.concat([rows.reset_index(drop=True), scores], axis=1)
    summary = {c: float(scores[c].mean()) for c in scores.select_dtypes("number")}
    values = compute_metrics(metrics, EvalGroup(scored, scorers))
    clash = sorted(set(values) & set(summary))
    if clash:
        raise ValueError(f"evaluation.metrics report {clash}, which are reward component columns")
    return scored, {**summary, **values, "n": len(rows)}


def flat_summary(results: list[tuple[str, str, dict[str, float]]]) -> dict[str, float]:
    """The first group's values as they are (what the leaderboard ranks by), then, when there are several groups,
    every group's as ``"{split}_{segment} {key}"`` (the [LoL] aggregator's columns, docs/sources.md §7.2)."""
    (_, _, first), *rest = results
    flat = dict(first)
    if rest:
        flat.update({f"{split}_{segment} {k}": v for split, segment, values in results for k, v in values.items()})
    return flat


def seed_name(column: str) -> str:
    """A reward column under the [LoL] aggregator's name: R is its ``final_reward``."""
    return "final_reward" if column == "reward" else column


def best_and_worst(history: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The [LoL] aggregator's best and worst validation points (docs/sources.md §7.2) of a validation history
    (``epoch``, ``step`` and one column per reward column): the epoch, step and value of the highest and of the
    lowest ``metric``, the first such point on a tie (the seed keeps a point only when it beats the one kept)."""
    values = history[metric].astype(float)
    out: dict[str, Any] = {}
    for side, at in (("best", values.idxmax()), ("worst", values.idxmin())):
        out.update({f"{side} e": int(history.at[at, "epoch"]), f"{side} s": int(history.at[at, "step"])})
        out[f"{side} V {seed_name(metric)}"] = float(values[at])
    return out


def aggregate_table(
    summaries: pd.DataFrame, task: str, baseline_model: str, splits: list[str], metric: str | None = None
) -> pd.DataFrame:
    """The [LoL] aggregator's layout (docs/sources.md §7.2): one row per algorithm, ``task_name, baseline_model,
    algorithm``; with the validation ``metric``, its best and worst validation points (``best_and_worst``'s
    columns, in ``summaries`` where the algorithm has a history, else NA) and its final value on each split
    (``val_{metric}``, ``test_{metric}``); then ``"{split}_{segment} {key}"`` for the generations of every split,
    then the references (the seed's val_gen, test_gen, val_gold, test_gold), rounded to 3 decimals. The algorithm
    column holds this pipeline's algorithm names, not the seed's hard-coded suffixes."""
    grouped = [
        c for segment in (GEN, GOLD) for split in splits for c in summaries if c.startswith(f"{split}_{segment} ")
    ]
    out = summaries[["algorithm", *grouped]].copy()
    if metric is not None:
        name = seed_name(metric)
        points = [f"{side} {c}" for side in ("best", "worst") for c in ("e", "s", f"V {name}")]
        finals = {f"{split}_{name}": summaries[f"{split}_{GEN} {metric}"] for split in splits}
        head = summaries.reindex(columns=points).assign(**finals)
        for side in ("best", "worst"):  # whole numbers, NA where there is no history
            head[[f"{side} e", f"{side} s"]] = head[[f"{side} e", f"{side} s"]].astype("Int64")
        out = pd.concat([out[["algorithm"]], head, out[grouped]], axis=1)
    out.insert(0, "baseline_model", baseline_model)
    out.insert(0, "task_name", task)
    return out.round(3)
