""" "Materialize all" for two tasks from the UI's GraphQL API on the PostgreSQL instance: the run queue
runs them at once (``max_concurrent_runs`` 2) against one at a time (1). ``make scale-check``; both
wall times are printed.

The tasks are the micro demo under two names (``demo`` and ``demo2``: two tasks, two sets of
artifacts), each backfilling its SFT model and the assets it depends on (the data; the SFT model
holds a slot of the pool ``gpu``, two slots per configs/deploy/pools.yaml): one run per task, the
smallest selection with a model in it, where a full backfill of the micro demo takes tens of minutes
on the 2-core development box. The measured times are in docs/scale.md. Both ways launch the two backfills together, through the same webserver and
daemon, and differ only in the queue's limit. Each way gets its own database and store, so neither
reuses the other's artifacts. The runs' start and end times, as the instance recorded them, show
whether they overlapped.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from pipelines.instance import TEMPLATES
from pipelines.ui_client import serve
from tests.postgres import postgres_database
from tests.ui.conftest import micro_demo_env

pytestmark = pytest.mark.scale
TASKS = ("demo", "demo2")
# The micro demo's SFT run takes 3-4 s, less than two runs' start-up times differ on the busy 2-core box
# (about 0.04 s an epoch): 300 epochs make each run ~15 s, so that their overlap is not start-up noise.
SFT_EPOCHS = 300
RUNS = "{ runsOrError { ... on Runs { results { runId status startTime endTime tags { key value } } } } }"


def two_tasks_env(root: Path, url: str, max_runs: int) -> dict[str, str]:
    """The micro demo as two tasks, on a PostgreSQL instance whose queue runs ``max_runs`` runs at once."""
    root.mkdir()
    env = micro_demo_env(root)
    tasks = Path(env["RLHF_TASKS_DIR"])
    raw = yaml.safe_load((tasks / "demo.yaml").read_text())
    raw["sft"]["train"]["epochs"] = SFT_EPOCHS
    for task in TASKS:
        (tasks / f"{task}.yaml").write_text(yaml.safe_dump({**raw, "task": task}))
    instance = yaml.safe_load(TEMPLATES["postgres"].read_text())
    instance["concurrency"]["runs"]["max_concurrent_runs"] = max_runs
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))  # the UI keeps a home's own dagster.yaml
    return {**env, "RLHF_INSTANCE": "postgres", "DAGSTER_POSTGRES_URL": url}


def backfills(root: Path, max_runs: int) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """Wall time of both tasks' "Materialize all", launched together; each task's runs (start, end),
    in seconds from the launch."""
    with (
        postgres_database() as url,
        serve(two_tasks_env(root, url, max_runs), root / "ui.log", timeout_s=900) as ui,
    ):
        nodes = ui.gql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
        selections = {t: upstream(nodes, [t, "sft_model"]) for t in TASKS}
        t0 = time.time()
        ids = {ui.materialize_all(selections[t]): t for t in TASKS}
        results = [ui.wait_for_backfill(i, timeout_s=1800) for i in ids]
        elapsed = time.time() - t0
        for r in results:
            assert r["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (r.get("error"), ui.log.read_text()[-3000:])
        runs = ui.gql(RUNS)["runsOrError"]["results"]
    by_task: dict[str, list[tuple[float, float]]] = {t: [] for t in TASKS}
    for run in runs:
        assert run["status"] == "SUCCESS", run
        backfill = {t["key"]: t["value"] for t in run["tags"]}["dagster/backfill"]
        by_task[ids[backfill]].append((run["startTime"] - t0, run["endTime"] - t0))
    assert all(by_task.values()), by_task
    return elapsed, by_task


def upstream(nodes: list[dict], target: list[str]) -> list[list[str]]:
    """``target`` and every asset it depends on, from the UI's asset nodes."""
    parents = {tuple(n["assetKey"]["path"]): [tuple(d["path"]) for d in n["dependencyKeys"]] for n in nodes}
    todo, seen = [tuple(target)], set()
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo += parents[key]
    return sorted(list(k) for k in seen)


def overlap_s(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Seconds during which a run of ``a`` and a run of ``b`` were both running (as the instance recorded)."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def test_overlap_is_the_time_both_ran():
    assert overlap_s([(0, 10)], [(5, 20)]) == 5  # hand-worked: both ran from 5 to 10
    assert overlap_s([(0, 10), (30, 40)], [(8, 35)]) == 2 + 5
    assert overlap_s([(0, 10)], [(10, 20)]) == 0  # one after the other


def test_two_tasks_materialize_all_run_at_once_on_postgres(tmp_path):
    one, runs_one = backfills(tmp_path / "one_at_a_time", max_runs=1)
    print(f"\none run at a time: {one:.1f}s", flush=True)
    assert overlap_s(*runs_one.values()) == 0  # the queue of one kept them apart: a fair baseline
    two, runs_two = backfills(tmp_path / "two_at_once", max_runs=2)
    both = overlap_s(*runs_two.values())
    print(
        f"\ntwo tasks' Materialize all (SFT model and its upstream, micro demo) on PostgreSQL: "
        f"one run at a time {one:.1f}s ({sum(map(len, runs_one.values()))} runs), "
        f"two at once {two:.1f}s ({sum(map(len, runs_two.values()))} runs), running together for {both:.1f}s"
    )
    for way, runs in (("one at a time", runs_one), ("two at once", runs_two)):
        print(f"{way}: runs (start, end) s after the launch: {runs}")
    assert both > 0  # the two tasks' runs ran at the same time
