"""Dagster resources: the artifact store, the IO manager that passes artifact refs, and the
launcher that decides where a heavy stage runs.

``build_resources()`` is the only place the environment is read (RLHF_ARTIFACTS; RLHF_LAUNCHER,
which overrides every task's ``launcher.kind``: inprocess, subprocess or k8s; RLHF_JUDGE_BASE_URL and
RLHF_JUDGE_MODEL), but for a chat judge's API key, read when the judge is asked (resources/judge.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from resources.artifacts import ArtifactStoreResource
from resources.io_manager import RefIOManager
from resources.judge import JudgeResource
from resources.launcher import LauncherResource
from rlhf_core.config import project_root


def artifact_root() -> str:
    return os.environ.get("RLHF_ARTIFACTS", str(project_root() / "data" / "artifacts"))


def build_resources(root: str | None = None, rebuild: Iterable[str] = (), launcher: str | None = None) -> dict:
    """``rebuild``: asset names the store (and so the launcher) builds again even where it has them;
    ``launcher``: a launcher kind for every task, else RLHF_LAUNCHER's, else each task's own."""
    artifacts = ArtifactStoreResource(root=root or artifact_root(), rebuild=sorted(rebuild))
    kind = launcher or os.environ.get("RLHF_LAUNCHER") or None
    return {
        "artifacts": artifacts,
        "io_manager": RefIOManager(root=artifacts.root),
        "launcher": LauncherResource(artifacts=artifacts, kind=kind),
        "judge": JudgeResource(
            base_url=os.environ.get("RLHF_JUDGE_BASE_URL"), model=os.environ.get("RLHF_JUDGE_MODEL")
        ),
    }
