"""A real S3-protocol server for the tests: moto's threaded server on 127.0.0.1, reached through s3fs.

Nothing is patched: the store's requests (including the conditional ``PutObject`` of a commit) go
over HTTP to the server, and processes the tests start reach it through the same environment
(``AWS_ENDPOINT_URL`` and dummy credentials), as a pod reaches a bucket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """Start the server; yield the environment that points boto (s3fs) at it."""
    pytest.importorskip("s3fs", reason="the object-store tests need s3fs and moto[server] (pip install -e '.[s3]')")
    server_module = pytest.importorskip("moto.server", reason="the object-store tests need moto[server]")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        try:
            yield env
        finally:
            server.stop()


def new_bucket() -> str:
    """A fresh bucket on the server the environment points at; returns its ``s3://`` URL."""
    import s3fs

    name = f"rlhf-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def s3_env():
    with s3_server() as env:
        yield env


@pytest.fixture
def bucket(s3_env, tmp_path, monkeypatch) -> str:
    """A fresh ``s3://`` store root, with this test's own local cache."""
    monkeypatch.setenv("RLHF_CACHE", str(tmp_path / "cache"))
    return f"{new_bucket()}/artifacts"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process a test starts: this checkout first on the path, the server's settings."""
    return {**os.environ, "PYTHONPATH": os.getcwd(), **(extra or {})}
