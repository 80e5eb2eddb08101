"""Metrics of the reward components' scores: means, standardised scores, weighted mixes, [FG] error ratios."""

from __future__ import annotations

import numpy as np

from rlhf_core.data.segmentation import reward_segments
from rlhf_core.eval.registry import EvalGroup, register


@register("mean")
class Mean:
    """The mean of a score column (a reward component, ``reward``), and its population std with ``std: true``."""

    version = "1"

    def __init__(self, column: str, std: bool = False):
        self.column, self.std = column, std

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        values = group.column(self.column, "mean").to_numpy(dtype=np.float64)
        return {"": float(values.mean()), **({"_std": float(values.std())} if self.std else {})}


@register("mix")
class Mix:
    """``bias + sum_c w_c * column_c`` per row, its mean and std ([CRS] ``crs_025 = 0.25 rank + 0.75 abs``,
    docs/sources.md §7.4; [FG]'s summed fine-grained reward, §7.1)."""

    version = "1"

    def __init__(self, weights: dict[str, float], bias: float = 0.0):
        if not weights:
            raise ValueError("mix: give weights, {column: weight}")
        self.weights, self.bias = dict(weights), float(bias)

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        total = self.bias + sum(w * group.column(c, "mix").to_numpy(dtype=np.float64) for c, w in self.weights.items())
        return {"": float(np.mean(total)), "_std": float(np.std(total))}


@register("standardised")
class Standardised:
    """The mean of ``(score - mean) / std`` of a score column: [FG]'s z-normalised completeness, with the constants
    fine-grained PPO uses (docs/sources.md §7.1)."""

    version = "1"

    def __init__(self, column: str, mean: float, std: float):
        if std <= 0:
            raise ValueError(f"standardised: std must be > 0, got {std}")
        self.column, self.mean, self.std = column, float(mean), float(std)

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        values = group.column(self.column, "standardised").to_numpy(dtype=np.float64)
        return {"": float(np.mean((values - self.mean) / self.std))}


@register("segment_ok_ratio")
class SegmentOkRatio:
    """The share of segments a fine-grained component judges error-free (its dense reward > 0), micro-averaged:
    all correct segments over all judged segments ([FG] ``relevance_ratios`` from R1 over sub-sentences,
    ``factuality_ratios`` from R2 over sentences; docs/sources.md §7.1). Segments truncated away are not judged."""

    version = "1"

    def __init__(self, component: str):
        self.component = component

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        scorer = group.scorer(self.component, "segment_ok_ratio")
        if not callable(getattr(scorer, "segment_rewards", None)):
            raise TypeError(f"segment_ok_ratio: component {self.component!r} gives no per-segment rewards")
        rows = scorer.segment_rewards(group.rows["prompt"].tolist(), group.rows["completion"].tolist())
        judged = sum(len(r) for r in rows)
        return {"": sum(1 for r in rows for _, v in r if v > 0) / judged if judged else float("nan")}


@register("segments")
class Segments:
    """The mean number of segments per response (``unit``: sentence or subsentence; [FG] ``n_sentences``,
    ``n_sub_sentences``), cut as the fine-grained RMs cut them."""

    version = "1"

    def __init__(self, unit: str):
        reward_segments("", unit)  # an unknown unit fails here
        self.unit = unit

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        return {
            "": float(np.mean([len(reward_segments(c, self.unit)) for c in group.column("completion", "segments")]))
        }
