"""Evaluation metrics by name, so a task YAML lists its seed's metrics instead of a stage hard-coding them.

A metric reads one group of evaluated rows (one split, the policy's generations or the gold references)
and returns named values; ``evaluation.metrics`` in a task YAML names it with its parameters, as
``annotation.scorers`` names scorers:

    @register("distinct")
    class Distinct:
        version = "1"
        def __init__(self, n: list[int] = (1, 2, 3)): ...
        def __call__(self, group: EvalGroup) -> dict[str, float]: ...

    evaluation:
      metrics:
        rouge: {metric: rouge_lsum}                             # reported as "rouge"
        distinct: {metric: distinct, params: {n: [1, 2, 3]}}    # "distinct-1", "distinct-2", "distinct-3"

A metric's keys name what it reports: a key that starts with a letter is reported as it is ("coverage"),
any other is appended to the YAML's name ("" -> "rouge", "-1" -> "distinct-1", "_std" -> "crs_025_std").
``version``: bump it when the values it gives would change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from rlhf_core.registry import Registry


@dataclass(frozen=True)
class EvalGroup:
    """One group of evaluated rows and what scored them.

    ``rows``: ``id``, ``prompt``, ``completion`` (the text under evaluation), ``sample`` (the sample's
    index for its prompt), ``completion_tokens`` where generated, the prompts table's own columns (e.g.
    ``reference``, ``references``, ``knowledge``), one column per reward component (and breakdowns) and
    ``reward``. ``scorers``: the task's opened reward components by name.
    """

    rows: pd.DataFrame
    scorers: Mapping[str, Any]

    def column(self, name: str, metric: str) -> pd.Series:
        if name not in self.rows:
            raise KeyError(f"metric {metric!r} needs column {name!r}; the evaluated rows have {sorted(self.rows)}")
        return self.rows[name]

    def scorer(self, component: str, metric: str) -> Any:
        if component not in self.scorers:
            raise KeyError(
                f"metric {metric!r} reads component {component!r}; the task's annotation.scorers are "
                f"{sorted(self.scorers)}"
            )
        return self.scorers[component]


class Metric(Protocol):
    version: str

    def __call__(self, group: EvalGroup) -> dict[str, float]: ...


METRICS: Registry[Callable[..., Metric]] = Registry("metric", "rlhf_core.eval.measures")
register = METRICS.register


def build_metric(name: str, **params: Any) -> Metric:
    return METRICS.get(name)(**params)


def metric_code(specs: Mapping[str, Any]) -> list[Callable[..., Metric]]:
    """The registered metrics a task's ``evaluation.metrics`` names: the code its evaluation keys on."""
    return [METRICS.get(spec.metric) for spec in specs.values()]


def compute_metrics(specs: Mapping[str, Any], group: EvalGroup) -> dict[str, float]:
    """Every configured metric on one group: ``{reported name: value}`` (``specs``: name -> MetricSpec)."""
    out: dict[str, float] = {}
    for name, spec in specs.items():
        values = build_metric(spec.metric, **spec.params)(group)
        named = {key if key[:1].isalpha() else name + key: value for key, value in values.items()}
        clash = sorted(set(named) & set(out))
        if clash:
            raise ValueError(f"evaluation.metrics.{name}: reports {clash}, which another metric already reports")
        out.update({k: float(v) for k, v in named.items()})
    return out
