"""Headless materialization of a task's graph on the persistent Dagster instance (``rlhf run``)."""
from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines.instance import instance
from pipelines.task_defs import run_plan
from resources import artifact_root, build_resources
from rlhf_core.config import ConfigError, load_config, task_config_path

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def resolve_selection(task: str, steps, select: list[str]) -> set[dg.AssetKey]:
    every = {k for s in steps for k in s.keys}
    if not select:
        return every
    groups = {}
    for s in steps:
        for a in s.assets:
            for k in a.keys:
                groups.setdefault(a.group_names_by_key[k].removeprefix(f"{task}_"), set()).add(k)
    chosen: set[dg.AssetKey] = set()
    for item in select:
        if item in groups:
            chosen |= groups[item]
        elif dg.AssetKey([task, item]) in every:
            chosen.add(dg.AssetKey([task, item]))
        else:
            raise ConfigError(f"--select {item!r}: not an asset or group of {task}; groups: {sorted(groups)}, "
                              f"assets: {sorted(k.path[-1] for k in every)}")
    return chosen


def run_task(task_name: str, overrides: list[str], select: list[str], resources: dict | None = None,
             profile: str | None = None) -> int:
    task = load_config(task_config_path(task_name), overrides, profile=profile)
    steps = run_plan(task)
    every_asset = [a for s in steps for a in s.assets]
    chosen = resolve_selection(task_name, steps, select)
    inst = instance()
    resources = resources or build_resources()
    start = time.time()
    for step in steps:
        keys = [k for k in step.keys if k in chosen]
        if not keys:
            continue
        for partition in step.partitions:
            label = ", ".join(k.path[-1] for k in keys) + (f" [{partition}]" if partition else "")
            t0 = time.time()
            result = dg.materialize(every_asset, selection=keys, partition_key=partition, instance=inst,
                                    resources=resources, run_config=QUIET, tags={"rlhf/task": task_name})
            if not result.success:
                print(f"FAILED {label}")
                return 1
            print(f"[{time.time() - start:7.1f}s] {label} ({time.time() - t0:.1f}s)", flush=True)
    return 0


def print_leaderboard(task_name: str) -> int:
    path = Path(artifact_root()) / task_name / "leaderboard.csv"
    if not path.exists():
        print(f"{path} does not exist: run `rlhf run {task_name}` first")
        return 1
    print(f"Leaderboard ({path}):")
    print(pd.read_csv(path).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0
