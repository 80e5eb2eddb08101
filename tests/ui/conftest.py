"""A real Dagster UI (webserver and daemon, as `make ui` starts them) over a micro demo.

The demo config is the one of tests/dagster/test_pipeline.py, written to a temporary tasks folder
(``RLHF_TASKS_DIR``); runs, events and artifacts go to temporary folders too. The instance is the
PostgreSQL one (``RLHF_INSTANCE=postgres``, a fresh database) where a server can be had
(tests/postgres.py), else the embedded SQLite one, with the reason printed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines.ui_client import UI, serve
from rlhf_core.config import apply_override, tasks_dir
from tests.dagster.test_pipeline import MICRO
from tests.postgres import postgres_database


def micro_demo_env(root: Path) -> dict[str, str]:
    tasks = root / "tasks"
    tasks.mkdir()
    raw = yaml.safe_load((tasks_dir() / "demo.yaml").read_text())
    for item in MICRO + [f"annotation.incoming.folder={root / 'incoming'}"]:
        apply_override(raw, item, "demo.yaml")
    (tasks / "demo.yaml").write_text(yaml.safe_dump(raw))
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "RLHF_ARTIFACTS": str(root / "artifacts"),
        "RLHF_TASKS_DIR": str(tasks),
    }


@contextlib.contextmanager
def instance_env() -> Iterator[dict[str, str]]:
    """The environment that puts the UI's instance on a fresh PostgreSQL database, or {} (SQLite)."""
    try:
        with postgres_database() as url:
            print(f"\nthe UI's instance: PostgreSQL ({url})")
            yield {"RLHF_INSTANCE": "postgres", "DAGSTER_POSTGRES_URL": url}
    except pytest.skip.Exception as reason:
        print(f"\nthe UI's instance: SQLite ({reason})")
        yield {}


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> tuple[UI, Path]:
    """The running UI and the folder holding its artifacts/, dagster_home/ and ui.log."""
    root = tmp_path_factory.mktemp("ui")
    with instance_env() as instance, serve({**micro_demo_env(root), **instance}, root / "ui.log") as ui:
        yield ui, root
