"""The project's Dagster instance: ``$DAGSTER_HOME`` set up with the repo's ``dagster.yaml``.

    python -m pipelines.instance      # what `make ui` runs before starting the UI

``DAGSTER_HOME`` defaults to ``.dagster_home/`` in the working directory (the repo root, where
``make`` and the UI run), so the UI and ``rlhf run`` share one run and event storage.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

# pipelines/ is an application folder loaded from the repo root, never installed.
TEMPLATE = Path(__file__).resolve().parent.parent / "configs" / "deploy" / "dagster.yaml"


def ensure_home() -> Path:
    """Create ``$DAGSTER_HOME`` and install the project's dagster.yaml there if it has none."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)  # Dagster requires an absolute path
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    return home


def instance() -> dg.DagsterInstance:
    ensure_home()
    return dg.DagsterInstance.get()


if __name__ == "__main__":
    print(f"DAGSTER_HOME={ensure_home()}")
