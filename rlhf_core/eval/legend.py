"""What each column of a leaderboard means, from the task's reward components, its evaluation metrics and
the scorers' and metrics' own docs.

    leaderboard_legend(cfg, ["algorithm", "gold", "reward", "rm", "distinct-1", "n"])
    # {"gold": "the ranking column (rows best first): mean score of component gold (scorer gold): The ...", ...}

Shown as the column descriptions of the leaderboard's Dagster table, as its own ``legend`` table and
under ``rlhf leaderboard``.
"""

from __future__ import annotations

from typing import Any

from rlhf_core.eval.registry import METRICS
from rlhf_core.rewards.base import scorer_legend

FIXED = {
    "algorithm": "the policy: an RL algorithm (a partition of policy), or sft, the SFT model itself untouched by "
    "RL (the baseline)",
    "n": "number of evaluation samples (one per evaluation prompt)",
    "setting": "the algorithm's setting: its own, or for a swept algorithm the best on the validation split",
    "seeds": "number of training seeds the row averages",
}
# A metric's spread beside it (rlhf_core.eval.board): suffix -> what it is of the metric
SPREAD = {
    "_lo": "lower end of the 95% interval over prompts (bootstrap; jackknife for distinct-n) of",
    "_hi": "upper end of the 95% interval over prompts (bootstrap; jackknife for distinct-n) of",
    "_seed_std": "standard deviation over training seeds of",
}


def _reward(scorers: dict[str, Any]) -> str:
    terms = [
        f"{s.weight:g} * {c}" if s.transform == "identity" else f"{s.weight:g} * {s.transform}({c})"
        for c, s in scorers.items()
        if s.weight
    ]
    return (
        "R, the task's reward that RL optimises (the rewards asset's formula): "
        + " + ".join(terms)
        + "; the mean over the evaluation samples"
    )


def _component(name: str, spec: Any) -> str:
    summary, _ = scorer_legend(spec.scorer)
    what = f"the trained reward model {spec.partition!r}" if spec.partition else summary
    weight = f"weight {spec.weight:g} in R" if spec.weight else "reported only, not in R (weight 0)"
    return f"mean score of component {name} (scorer {spec.scorer}): {what}; {weight}"


def _metric(name: str, spec: Any) -> str:
    doc = " ".join((METRICS.get(spec.metric).__doc__ or spec.metric).split()).split(". ")[0].rstrip(".")
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.params.items()))
    return f"evaluation metric {name} ({spec.metric}{', ' + params if params else ''}): {doc}"


def _metric_columns(columns: list[str], metrics: dict[str, Any]) -> dict[str, str]:
    """The columns a metric reports under its YAML name: the name itself or the name and a suffix
    (``distinct`` -> ``distinct-1``; rlhf_core.eval.registry)."""
    out = {}
    for column in columns:
        for name, spec in metrics.items():
            if column == name or (column.startswith(name) and not column[len(name)].isalpha()):
                out[column] = _metric(name, spec)
    return out


def leaderboard_legend(cfg: Any, columns: list[str]) -> dict[str, str]:
    """``column -> meaning`` for every column (one no scorer explains says so); ``cfg`` reads
    ``evaluation.rank_by``, ``evaluation.metrics`` and ``annotation.scorers``."""
    scorers = cfg.annotation.scorers
    known = {
        **FIXED,
        "reward": _reward(scorers),
        **{c: _component(c, s) for c, s in scorers.items()},
        # a component's own column is never a metric's, even where its name extends the metric's
        **_metric_columns([c for c in columns if c not in scorers], dict(cfg.evaluation.metrics)),
    }
    for spec in scorers.values():
        known = {**scorer_legend(spec.scorer)[1], **known}
    for column in columns:
        for suffix, what in SPREAD.items():
            if column.endswith(suffix) and column.removesuffix(suffix) in columns:
                known.setdefault(column, f"{what} {column.removesuffix(suffix)}")
    legend = {c: known.get(c, "a column of a scorer's breakdown") for c in columns}
    rank_by = cfg.evaluation.rank_by
    if rank_by in legend:
        legend[rank_by] = f"the ranking column (rows best first): {legend[rank_by]}"
    return legend
