"""Two tasks' backfills from the UI on the PostgreSQL instance: at once against one after the other
(``make scale-check``; the time of each is printed).

The tasks are the micro demo under two names (``demo`` and ``demo2``: two tasks, two sets of
artifacts), each backfilling its SFT model and the assets it depends on (the data; the SFT model
holds a slot of the pool ``gpu``, two slots per configs/deploy/pools.yaml): a full backfill of the
micro demo takes tens of minutes on the 2-core development box. Each way gets its own database and
store, so neither reuses the other's artifacts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from pipelines.ui_client import serve
from tests.postgres import postgres_database
from tests.ui.conftest import micro_demo_env

pytestmark = pytest.mark.scale
TASKS = ("demo", "demo2")
RUNS = "{ runsOrError { ... on Runs { results { runId status startTime endTime tags { key value } } } } }"


def two_tasks_env(root: Path, url: str) -> dict[str, str]:
    root.mkdir()
    env = micro_demo_env(root)
    tasks = Path(env["RLHF_TASKS_DIR"])
    raw = yaml.safe_load((tasks / "demo.yaml").read_text())
    (tasks / "demo2.yaml").write_text(yaml.safe_dump({**raw, "task": "demo2"}))
    return {**env, "RLHF_INSTANCE": "postgres", "DAGSTER_POSTGRES_URL": url}


def backfills(root: Path, together: bool) -> tuple[float, list[dict]]:
    """Wall time of both tasks' backfills, launched together or one after the other; the runs."""
    with postgres_database() as url, serve(two_tasks_env(root, url), root / "ui.log", timeout_s=900) as ui:
        nodes = ui.gql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
        selections = {t: upstream(nodes, [t, "sft_model"]) for t in TASKS}
        t0 = time.time()
        if together:
            ids = [ui.materialize_all(selections[t]) for t in TASKS]
            results = [ui.wait_for_backfill(i, timeout_s=1800) for i in ids]
        else:
            results = [ui.wait_for_backfill(ui.materialize_all(selections[t]), timeout_s=1800) for t in TASKS]
        elapsed = time.time() - t0
        for r in results:
            assert r["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (
                r.get("error"),
                (root / "ui.log").read_text()[-3000:],
            )
        return elapsed, ui.gql(RUNS)["runsOrError"]["results"]


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


def launched_together(log: Path) -> bool:
    """Whether the run queue launched both tasks' runs in one go (the daemon's "Launched 2 runs"). Whether they
    then also overlap in time depends on the box: on a busy 2-core box one run worker's start-up (imports, the
    code location) can outlast the other run."""
    return "Launched 2 runs" in log.read_text()


def test_two_tasks_backfills_run_at_once_on_postgres(tmp_path):
    sequential, runs_seq = backfills(tmp_path / "sequential", together=False)
    print(f"\none after the other: {sequential:.1f}s", flush=True)
    parallel, runs_par = backfills(tmp_path / "parallel", together=True)
    print(
        f"\ntwo tasks' backfills (SFT model and its upstream, micro demo) on PostgreSQL: one after the other "
        f"{sequential:.1f}s ({len(runs_seq)} runs), at once {parallel:.1f}s ({len(runs_par)} runs)"
    )
    assert launched_together(tmp_path / "parallel" / "ui.log")
