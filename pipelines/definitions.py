"""The code location the UI loads (workspace.yaml): every task config under configs/tasks/.

    dagster-webserver -w workspace.yaml -h 127.0.0.1
    RLHF_PROFILE=gpu make ui          # every task with configs/profiles/gpu.yaml overlaid
"""
from __future__ import annotations

import os

import dagster as dg

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import TASKS_DIR, load_config


def build_definitions() -> dg.Definitions:
    profile = os.environ.get("RLHF_PROFILE") or None
    tasks = [load_config(path, profile=profile) for path in sorted(TASKS_DIR.glob("*.yaml"))]
    return dg.Definitions.merge(*(build_task_definitions(t) for t in tasks), dg.Definitions(resources=build_resources()))


defs = build_definitions()
