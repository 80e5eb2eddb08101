"""The code location the UI loads (workspace.yaml): every task config in one folder.

    python -m pipelines.ui                         # what `make ui` runs (webserver and daemon)
    dg dev -w workspace.yaml -h 127.0.0.1          # the same, with Dagster's 30 s backfill tick
    RLHF_PROFILE=gpu make ui                       # every task with configs/profiles/gpu.yaml overlaid

The folder is ``configs/tasks/``, or ``$RLHF_TASKS_DIR`` (for example a folder holding a smaller
copy of a task, as the UI tests use).
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import load_config, tasks_dir


def build_definitions(tasks_dir: Path) -> dg.Definitions:
    profile = os.environ.get("RLHF_PROFILE") or None
    tasks = [load_config(path, profile=profile) for path in sorted(tasks_dir.glob("*.yaml"))]
    # In-process steps: a step costs milliseconds instead of a process start (seconds); each run is
    # already its own process, started by the instance's run launcher.
    shell = dg.Definitions(resources=build_resources(), executor=dg.in_process_executor)
    return dg.Definitions.merge(*(build_task_definitions(t) for t in tasks), shell)


defs = build_definitions(Path(os.environ.get("RLHF_TASKS_DIR") or tasks_dir()))
