"""The project's Dagster instance: ``$DAGSTER_HOME`` set up with one of the repo's instance configs.

    python -m pipelines.instance          # what `make ui` runs before starting the UI
    python -m pipelines.instance --pools  # apply configs/deploy/pools.yaml to the instance

``DAGSTER_HOME`` defaults to ``.dagster_home/`` in the working directory (the repo root, where
``make`` and the UI run), so the UI and ``rlhf run`` share one run and event storage.
``RLHF_INSTANCE`` picks its config: ``sqlite`` (the default: embedded, nothing to run, one run at a
time) or ``postgres`` (``configs/deploy/dagster-postgres.yaml``: the server at
``$DAGSTER_POSTGRES_URL``, several runs at once, a pool of slots per GPU class). ``RLHF_STEP_LOGS``
(``s3://bucket/prefix``) sends the steps' stdout and stderr to the object store (dagster-aws's
``S3ComputeLogManager``), so the UI shows the logs of a step that ran in another pod.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import yaml

# pipelines/ is an application folder loaded from the repo root, never installed.
DEPLOY = Path(__file__).resolve().parent.parent / "configs" / "deploy"
TEMPLATES = {"sqlite": DEPLOY / "dagster.yaml", "postgres": DEPLOY / "dagster-postgres.yaml"}
POOLS = DEPLOY / "pools.yaml"


def ensure_home() -> Path:
    """Create ``$DAGSTER_HOME`` and install the chosen dagster.yaml there if it has none."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)  # Dagster requires an absolute path
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        kind = os.environ.get("RLHF_INSTANCE", "sqlite")
        if kind not in TEMPLATES:
            raise ValueError(f"RLHF_INSTANCE={kind!r}: expected one of {sorted(TEMPLATES)}")
        if kind == "postgres" and not os.environ.get("DAGSTER_POSTGRES_URL", "").startswith("postgresql+psycopg2://"):
            # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres brings psycopg2
            raise ValueError(
                "RLHF_INSTANCE=postgres needs DAGSTER_POSTGRES_URL=postgresql+psycopg2://user:password@host:5432/db"
            )
        # each process its own temporary name: a shared one vanished under a second process's os.replace
        fd, name = tempfile.mkstemp(dir=home, prefix=".dagster.yaml.")
        os.close(fd)
        tmp = Path(name)
        shutil.copyfile(TEMPLATES[kind], tmp)
        if os.environ.get("RLHF_STEP_LOGS"):
            with tmp.open("a") as fh:
                fh.write("\n" + yaml.safe_dump({"compute_logs": step_logs(os.environ["RLHF_STEP_LOGS"])}))
        os.replace(tmp, home / "dagster.yaml")
    return home


def step_logs(url: str) -> dict:
    """The compute log manager section that keeps step logs under ``s3://bucket/prefix``. The endpoint
    and credentials come from the AWS environment (AWS_ENDPOINT_URL, a pod's role), never from here."""
    if not url.startswith("s3://"):
        raise ValueError(f"RLHF_STEP_LOGS={url!r}: expected s3://bucket/prefix")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return {
        "module": "dagster_aws.s3.compute_log_manager",
        "class": "S3ComputeLogManager",
        "config": {"bucket": bucket, "prefix": prefix.strip("/") or "dagster-step-logs"},
    }


def apply_pools(inst: dg.DagsterInstance, path: Path = POOLS) -> dict[str, int]:
    """Set each pool's slots (``pool: limit`` lines of ``path``) on the instance; returns them."""
    limits = yaml.safe_load(path.read_text()) or {}
    for pool, limit in limits.items():
        if not isinstance(limit, int) or limit < 0:
            raise ValueError(f"{path}: pool {pool!r}: expected a whole number of slots, got {limit!r}")
        inst.event_log_storage.set_concurrency_slots(pool, limit)
    return limits


def instance() -> dg.DagsterInstance:
    """The instance, its storage created by one process at a time: two `rlhf run` starting together on a
    new home both stamped the SQLite schemas (``UNIQUE constraint failed: alembic_version``)."""
    home = ensure_home()
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        inst = dg.DagsterInstance.get()
        inst.get_runs(limit=1)  # opens the run storage, creating it under the lock
    return inst


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m pipelines.instance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", action="store_true", help=f"apply {POOLS.relative_to(DEPLOY.parents[1])}")
    opts = parser.parse_args()
    print(f"DAGSTER_HOME={ensure_home()}")
    if opts.pools:
        print(f"pool limits: {apply_pools(instance())}")
