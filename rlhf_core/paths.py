"""Where the project's files are: relative paths resolve from the working directory (the repo
root when you run ``make``, ``rlhf`` or ``dg dev`` there) or from ``RLHF_PROJECT_ROOT``, never from
the package location, which is wrong once the package is installed."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """Where relative paths (configs, fixtures, incoming folders) resolve: ``RLHF_PROJECT_ROOT``,
    else the working directory. Never the package location, which is wrong once installed."""
    return Path(os.environ.get("RLHF_PROJECT_ROOT") or os.getcwd()).resolve()


def tasks_dir() -> Path:
    return project_root() / "configs" / "tasks"


def profiles_dir() -> Path:
    return project_root() / "configs" / "profiles"


def accelerate_dir() -> Path:
    return project_root() / "configs" / "accelerate"
