"""The instance configs of configs/deploy/: the PostgreSQL one queues several runs and keeps a pool of
slots per GPU class; step logs can go to an object store (a local S3-protocol server here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from pipelines.instance import apply_pools, instance
from pipelines.task_defs import run_plan
from rlhf_core.config import load_config, task_config_path
from tests.postgres import postgres_database
from tests.s3_server import new_bucket

ROOT = Path(__file__).resolve().parents[2]


def test_processes_opening_a_new_home_at_once_all_get_the_instance(tmp_path):
    # Unlocked, 8 of 24 such processes failed with "UNIQUE constraint failed: alembic_version".
    code = (
        "from pipelines.instance import instance; i = instance(); i.get_runs(); i.event_log_storage.get_asset_records()"
    )
    for round_ in range(2):
        env = {**os.environ, "DAGSTER_HOME": str(tmp_path / f"home{round_}"), "PYTHONPATH": str(ROOT)}
        env.pop("RLHF_INSTANCE", None)
        procs = [
            subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        errors = [p.communicate()[1] for p in procs if p.wait() != 0]
        assert not errors, errors[0][-500:]


@pytest.mark.scale  # a fresh database's migrations take seconds; the UI tests use this instance too
def test_the_postgres_instance_runs_several_at_once_with_a_pool_per_gpu_class(tmp_path, monkeypatch):
    with postgres_database() as url:
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("RLHF_INSTANCE", "postgres")
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
        with instance() as inst:
            assert type(inst.run_storage).__name__ == "PostgresRunStorage"
            assert url not in (tmp_path / "home" / "dagster.yaml").read_text()  # read from the environment
            assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs > 1
            limits = apply_pools(inst)
            assert limits["gpu-a100"] == 2
            assert inst.event_log_storage.get_concurrency_info("gpu-a100").slot_count == 2


def test_postgres_without_a_url_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RLHF_INSTANCE", "postgres")
    monkeypatch.delenv("DAGSTER_POSTGRES_URL", raising=False)
    with pytest.raises(ValueError, match="needs DAGSTER_POSTGRES_URL=postgresql"):
        instance()


def test_a_task_s_gpu_class_names_the_pool_of_its_model_assets():
    task = load_config(task_config_path("demo"), ["launcher.gpu_class=a100"])
    assets = {k.path[-1]: a for step in run_plan(task) for a in step.assets for k in a.keys}
    pools = {name: next(iter(assets[name].op.pools), None) for name in ("sft_model", "policy", "raw_feedback")}
    assert pools == {"sft_model": "gpu-a100", "policy": "gpu-a100", "raw_feedback": None}


@pytest.mark.scale
def test_step_logs_go_to_the_object_store(s3_env, tmp_path, monkeypatch):
    logs = new_bucket() + "/step-logs"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RLHF_STEP_LOGS", logs)

    @dg.asset
    def talk():
        print("hello from the step")

    with instance() as inst:
        run = dg.materialize([talk], instance=inst).run_id
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    (out,) = fs.glob(f"{logs.removeprefix('s3://')}/**/{run}/compute_logs/*.out")
    assert "hello from the step" in fs.cat_file(out).decode()
