"""Start the annotation tool: Label Studio from its own virtual environment, on 127.0.0.1 only.

``make annotate`` runs ``python -m pipelines.annotate``. The admin account is created on first start from
the environment: ``LABEL_STUDIO_API_KEY`` (the token the pipeline sends; any 40 hex digits) and
``LABEL_STUDIO_PASSWORD`` (for the browser login as ``LABEL_STUDIO_USERNAME``, default
``annotator@localhost``). Neither is written to a file of ours or printed. Data lives in
``data/annotation/label-studio`` (SQLite), or in the local PostgreSQL with ``--postgres DBNAME``.

A database that has never been migrated is first copied from a migrated template in the tool's venv
(made once, ``template_db``), since Label Studio's own first migration takes minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from rlhf_core.paths import project_root

VENV = ".venv-annotate"
DB_FILE = "label_studio.sqlite3"


def venv() -> Path:
    return project_root() / VENV


def tool_env(
    data_dir: Path,
    token: str,
    password: str,
    username: str,
    postgres: str | None = None,
    webhooks: bool = False,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO_", "POSTGRE_"))}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LABEL_STUDIO_USERNAME": username,
            "LABEL_STUDIO_PASSWORD": password,
            "LABEL_STUDIO_USER_TOKEN": token,
            # the pipeline authenticates with this fixed token (Label Studio's "legacy" token)
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "LATEST_VERSION_CHECK": "false",
        }
    )  # no calls out
    if webhooks:  # the tool's SSRF guard refuses every local address, the webhook receiver's included
        env["SSRF_PROTECTION_ENABLED"] = "false"
    if postgres:
        env.update(
            {
                "DJANGO_DB": "default",
                "POSTGRE_NAME": postgres,
                "POSTGRE_USER": os.environ.get("PGUSER", "postgres"),
                "POSTGRE_PASSWORD": os.environ.get("PGPASSWORD", ""),
                "POSTGRE_HOST": "127.0.0.1",
                "POSTGRE_PORT": "5432",
            }
        )
    else:
        env["DJANGO_DB"] = "sqlite"
    return env


def template_db() -> Path:
    """A migrated, empty SQLite database (no users, no projects), made once per tool install."""
    template = venv() / "template-data"
    if not (template / DB_FILE).exists():
        tmp = venv() / ".template-data"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        env = {
            **tool_env(tmp, "unused", "unused", "unused"),
            "LABEL_STUDIO_USERNAME": "",
        }
        manage = next((venv() / "lib").glob("python3*/site-packages/label_studio/manage.py"))
        subprocess.run(
            [
                str(venv() / "bin" / "python"),
                str(manage),
                "migrate",
                "--no-color",
                "-v",
                "0",
            ],
            env=env,
            check=True,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(template, ignore_errors=True)
        tmp.rename(template)
    return template / DB_FILE


@contextlib.contextmanager
def serve(
    data_dir: Path,
    port: int,
    token: str,
    password: str,
    username: str = "annotator@localhost",
    postgres: str | None = None,
    log: Path | None = None,
    timeout_s: float = 900,
    webhooks: bool = False,
) -> Iterator[str]:
    """Run Label Studio on 127.0.0.1:``port`` until the block ends; yields its URL once it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not postgres and not (data_dir / DB_FILE).exists():
        shutil.copy(template_db(), data_dir / DB_FILE)
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(venv() / "bin" / "label-studio"),
        "start",
        "--no-browser",
        "--host",
        "127.0.0.1",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with open(log or data_dir / "label-studio.log", "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=tool_env(data_dir, token, password, username, postgres, webhooks),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"Label Studio exited with {proc.returncode}; see {out.name}")
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{url}/health", timeout=5).ok:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Label Studio did not answer on {url} within {timeout_s:.0f} s")
                time.sleep(2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", default="data/annotation/label-studio")
    parser.add_argument(
        "--postgres",
        metavar="DBNAME",
        help="store in the local PostgreSQL database DBNAME",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="allow webhooks to local addresses (the receiver of pipelines.feedback_webhook): turns off the "
        "tool's SSRF guard, which also lets its users make it fetch local URLs",
    )
    args = parser.parse_args(argv)
    missing = [v for v in ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_PASSWORD") if not os.environ.get(v)]
    if missing:
        print(
            f"error: set {' and '.join(missing)} first, e.g.\n  export LABEL_STUDIO_API_KEY=$(python3 -c "
            "'import secrets; print(secrets.token_hex(20))')\n  export LABEL_STUDIO_PASSWORD=<a password>",
            file=sys.stderr,
        )
        return 2
    if not (venv() / "bin" / "label-studio").exists():
        print(f"error: no Label Studio in {venv()}; run `make annotate`", file=sys.stderr)
        return 2
    username = os.environ.get("LABEL_STUDIO_USERNAME", "annotator@localhost")
    with serve(
        project_root() / args.data_dir,
        args.port,
        os.environ["LABEL_STUDIO_API_KEY"],
        os.environ["LABEL_STUDIO_PASSWORD"],
        username,
        args.postgres,
        webhooks=args.webhooks,
    ) as url:
        print(f"Label Studio on {url} (log in as {username}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
