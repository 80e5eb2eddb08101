"""The code location the UI loads (workspace.yaml): every task config in one folder.

    python -m pipelines.ui                         # what `make ui` runs (webserver and daemon)
    dg dev -w workspace.yaml -h 127.0.0.1          # the same, with Dagster's 30 s backfill tick
    RLHF_PROFILE=gpu make ui                       # every task with configs/profiles/gpu.yaml overlaid

The folder is ``configs/tasks/``, or ``$RLHF_TASKS_DIR`` (for example a folder holding a smaller
copy of a task, as the UI tests use). A task whose config does not load shows as one asset,
``<task>/config_error``, holding the error; every other task loads as usual.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dagster as dg

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.cli.common import one_line
from rlhf_core.config import load_config, tasks_dir
from rlhf_core.errors import UserError


def build_definitions(tasks_dir: Path) -> dg.Definitions:
    profile = os.environ.get("RLHF_PROFILE") or None
    per_task = [_task_definitions(path, profile) for path in sorted(tasks_dir.glob("*.yaml"))]
    # In-process steps: a step costs milliseconds instead of a process start (seconds); each run is
    # already its own process, started by the instance's run launcher.
    shell = dg.Definitions(resources=build_resources(), executor=dg.in_process_executor)
    return dg.Definitions.merge(*per_task, shell)


def _task_definitions(path: Path, profile: str | None) -> dg.Definitions:
    """One task's graph; a task whose config does not load (bad YAML, a bad value) becomes one
    placeholder asset, ``<task>/config_error``, whose description is the error, so one broken file
    never takes the other tasks out of the UI."""
    try:
        return build_task_definitions(load_config(path, profile=profile))
    except UserError as err:
        message = one_line(err)
        logging.getLogger(__name__).error("%s: not loaded: %s", path.stem, message)
        spec = dg.AssetSpec(
            [path.stem, "config_error"],
            group_name=path.stem,
            kinds={"yaml"},
            description=f"**This task did not load.** Fix `{path}` and reload the code "
            f"location.\n\n```\n{message}\n```",
            metadata={"error": dg.MetadataValue.text(message), "config": dg.MetadataValue.path(str(path))},
        )
        return dg.Definitions(assets=[spec])


defs = build_definitions(Path(os.environ.get("RLHF_TASKS_DIR") or tasks_dir()))
