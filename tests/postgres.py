"""A fresh PostgreSQL database for a test run: on the server at 127.0.0.1:5432 when one answers (CI starts
PostgreSQL 15 there, trust auth), else in a throwaway cluster started from the installed binaries
(``initdb``, ``pg_ctl``), else the test is skipped with the reason."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = ("127.0.0.1", 5432)


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def _database(server_url: str) -> Iterator[str]:
    """A new database on the server (``user@host:port``, dropped afterwards); yields its SQLAlchemy URL."""
    import psycopg2

    name = f"rlhf_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"postgresql://{server_url}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://{server_url}/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(f"no PostgreSQL at {SERVER[0]}:{SERVER[1]} and no initdb/pg_ctl to start one")
    if getpass.getuser() == "root":
        pytest.skip(f"no PostgreSQL at {SERVER[0]}:{SERVER[1]}, and initdb refuses to run as root")
    with tempfile.TemporaryDirectory() as tmp:
        data, port = Path(tmp) / "data", _free_port()
        subprocess.run([initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True, capture_output=True)
        subprocess.run(
            [
                pg_ctl,
                "-D",
                str(data),
                "-w",
                "-l",
                str(Path(tmp) / "log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {tmp}",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgres@127.0.0.1:{port}"
        finally:
            subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """Yields ``postgresql+psycopg2://...`` of a database of its own; skips the test when none can be had."""
    pytest.importorskip(
        "psycopg2", reason="the PostgreSQL instance needs dagster-postgres (pip install -e '.[postgres]')"
    )
    pytest.importorskip("dagster_postgres", reason="the PostgreSQL instance needs dagster-postgres")
    if _answers(*SERVER):
        server = contextlib.nullcontext(f"postgres@{SERVER[0]}:{SERVER[1]}")
    else:
        server = _throwaway_cluster()
    with server as url, _database(url) as database:
        yield database
