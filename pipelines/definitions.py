"""The code location the UI loads (workspace.yaml): every task config under configs/tasks/.

    dagster-webserver -w workspace.yaml -h 127.0.0.1
"""
from __future__ import annotations

import dagster as dg

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import load_config, tasks_dir


def build_definitions() -> dg.Definitions:
    tasks = [load_config(path) for path in sorted(tasks_dir().glob("*.yaml"))]
    return dg.Definitions.merge(*(build_task_definitions(t) for t in tasks), dg.Definitions(resources=build_resources()))


defs = build_definitions()
