"""The real annotation tool (Label Studio, from .venv-annotate) beside a micro demo, for ``make feedback-check``.

Skipped unless ``RLHF_FEEDBACK_CHECK=1`` (the make target sets it): starting the tool and the demo's policies
takes minutes, more than ``make test`` can spend.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest

from pipelines.annotate import serve, venv

if os.environ.get("RLHF_FEEDBACK_CHECK") != "1" or not (venv() / "bin" / "label-studio").exists():
    collect_ignore_glob = ["test_*.py"]  # `make feedback-check` installs the tool and sets the variable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tool(tmp_path_factory) -> dict:
    """A fresh Label Studio on a free local port: its URL, admin login and API token (only in this process)."""
    root: Path = tmp_path_factory.mktemp("label_studio")
    login = {
        "token": secrets.token_hex(20),
        "password": secrets.token_urlsafe(12),
        "username": "admin@localhost",
    }
    with serve(
        root / "data",
        free_port(),
        login["token"],
        login["password"],
        login["username"],
        log=root / "label-studio.log",
        webhooks=True,  # test_webhook's receiver is local
    ) as url:
        yield {**login, "url": url, "log": root / "label-studio.log"}
