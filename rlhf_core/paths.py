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


def writable_folder(path: str | Path, what: str) -> Path:
    """``path`` as a folder this process can write, created if missing; else a one-line user error
    naming ``what`` (e.g. ``the artifact store (RLHF_ARTIFACTS)``). The probe writes and removes a
    file: permission bits alone do not tell (root ignores them, a read-only mount keeps them)."""
    from rlhf_core.errors import UserError

    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{what} {path} is a file, not a folder: point it at a folder")
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UserError(
            f"{what} {path} is not writable ({err.strerror}): fix its permissions or point it at another folder"
        ) from None
    return path
