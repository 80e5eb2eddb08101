"""``rlhf status TASK``: every asset and partition as materialized, stale (and why) or missing.

It reads the same Dagster instance the UI uses (``pipelines.instance``) and asks Dagster's own
staleness resolver, over the task's asset graph built from its config as it is now. A stage's code
version is ``config:<hash> code:<hash>`` (``rlhf_core.stages.base.Stage.version``), so a new code
version says which of the two changed; an upstream change names the parent that has new data.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    CachingStaleStatusResolver,
    StaleCause,
    StaleCauseCategory,
    StaleStatus,
)
from dagster._core.definitions.temporal_context import TemporalContext
from dagster._time import get_current_datetime

from pipelines.instance import instance
from pipelines.task_defs import build_task_definitions, run_plan
from rlhf_core.config import load_config, task_config_path

WORDS = {StaleStatus.FRESH: "materialized", StaleStatus.STALE: "stale", StaleStatus.MISSING: "missing"}


def _resolver(inst: dg.DagsterInstance, graph: AssetGraph) -> CachingStaleStatusResolver:
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=inst,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=inst, asset_graph=graph, loading_context=view)


def _recorded_code_version(inst: dg.DagsterInstance, key: dg.AssetKey, partition: str | None) -> str:
    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    return records[0].asset_materialization.tags.get(CODE_VERSION_TAG, "") if records else ""


def _changed_parts(old: str, new: str) -> str:
    """Which of ``config:<hash> code:<hash>`` differ: "config", "code" or "config and code"."""
    before, after = dict(p.split(":", 1) for p in old.split() if ":" in p), dict(p.split(":", 1) for p in new.split())
    if not before:  # recorded before versions were split: nothing to compare
        return "config or code"
    changed = [part for part in ("config", "code") if before.get(part) != after.get(part)]
    return " and ".join(changed) or "config or code"


def _why(cause: StaleCause, inst: dg.DagsterInstance, code_version: str) -> str:
    if cause.category == StaleCauseCategory.CODE:
        old = _recorded_code_version(inst, cause.asset_key, cause.partition_key)
        return f"{_changed_parts(old, code_version)} changed"
    if cause.dependency is not None:
        dep = cause.dependency_asset_key.path[-1]
        part = f" [{cause.dependency_partition_key}]" if cause.dependency_partition_key else ""
        return f"upstream {dep}{part} changed"
    return cause.reason


def task_status(task_name: str, overrides: list[str] = (), profile: str | None = None) -> list[tuple[str, str, str]]:
    """``(asset [partition], status word, reason)`` for every asset partition of the task's plan, then
    for each asset outside it (incoming data) its stale partitions and a count of each status.

    Dagster calls a child of a stale asset fresh until the parent is materialized anew; the reason
    of such a child names the stale ancestors, as what the next run will most likely rebuild.
    """
    task = load_config(task_config_path(task_name), list(overrides), profile=profile)
    assets = build_task_definitions(task).assets
    graph = AssetGraph.from_assets(assets)
    inst = instance()
    resolver = _resolver(inst, graph)
    plan = run_plan(task)
    stale_above: dict[dg.AssetKey, set[str]] = {}  # asset -> stale or missing ancestors (plan order: parents first)
    rows = []
    for step in plan:
        for key in step.keys:
            above = set().union(*(stale_above.get(p, set()) for p in graph.get(key).parent_keys))
            for partition in step.partitions:
                status = resolver.get_status(key, partition)
                label = key.path[-1] + (f" [{partition}]" if partition else "")
                if status == StaleStatus.STALE:
                    code_version = graph.get(key).code_version or ""
                    why = "; ".join(
                        sorted({_why(c, inst, code_version) for c in resolver.get_stale_causes(key, partition)})
                    )
                else:
                    why = f"upstream stale: {', '.join(sorted(above))}" if above and status == StaleStatus.FRESH else ""
                rows.append((label, WORDS[status], why))
                if status != StaleStatus.FRESH:
                    above.add(key.path[-1])
            stale_above[key] = above
    planned = {k for step in plan for k in step.keys}
    for asset in assets:  # incoming data: a partition per day, shown as counts and stale days
        for key in sorted(set(asset.keys) - planned, key=str):
            rows += _summary(resolver, inst, graph, key, list(asset.partitions_def.get_partition_keys()))
    return rows


def _summary(
    resolver: CachingStaleStatusResolver,
    inst: dg.DagsterInstance,
    graph: AssetGraph,
    key: dg.AssetKey,
    partitions: list[str],
) -> list[tuple[str, str, str]]:
    statuses = {p: resolver.get_status(key, p) for p in partitions}
    code_version = graph.get(key).code_version or ""
    rows = [
        (
            f"{key.path[-1]} [{p}]",
            WORDS[StaleStatus.STALE],
            "; ".join(sorted({_why(c, inst, code_version) for c in resolver.get_stale_causes(key, p)})),
        )
        for p, status in statuses.items()
        if status == StaleStatus.STALE
    ]
    counts = ", ".join(f"{sum(s == status for s in statuses.values())} {word}" for status, word in WORDS.items())
    return rows + [(f"{key.path[-1]} [{len(partitions)} partitions]", counts, "")]


def print_status(task_name: str, overrides: list[str] = (), profile: str | None = None) -> int:
    rows = task_status(task_name, overrides, profile)
    width = max(len(r[0]) for r in rows)
    for label, word, why in rows:
        print(f"{label:<{width}}  {word}" + (f" ({why})" if why else ""))
    counts = {w: sum(r[1] == w for r in rows) for w in WORDS.values()}
    print(", ".join(f"{n} {w}" for w, n in counts.items()))
    return 0
