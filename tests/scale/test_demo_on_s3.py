"""The micro demo end to end with its artifacts on S3 (a local S3-protocol server), against the same
on a local path; then two ``rlhf run`` processes at once on one store, local and S3 (``make scale-check``).

Each test prints its wall times: what the object store costs the demo, and what two runs cost together.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rlhf_core.store import ArtifactStore
from tests.dagster.test_pipeline import micro_args
from tests.s3_server import child_env, new_bucket

pytestmark = pytest.mark.scale
RUN_TIMEOUT_S = 1800


def start_run(root: Path, store: str, name: str, cache: Path) -> tuple[subprocess.Popen, Path]:
    """``rlhf run demo`` (the micro config) as its own process, with its own Dagster instance."""
    log = root / f"{name}.log"
    env = child_env({"RLHF_ARTIFACTS": store, "DAGSTER_HOME": str(root / f"{name}-home"), "RLHF_CACHE": str(cache)})
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "demo", *micro_args()], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, log


def finish(proc: subprocess.Popen, log: Path) -> str:
    code = proc.wait(timeout=RUN_TIMEOUT_S)
    assert code == 0, log.read_text()[-3000:]
    return log.read_text()


def leaderboard(store: str, cache: Path, monkeypatch) -> pd.DataFrame:
    monkeypatch.setenv("RLHF_CACHE", str(cache))
    return pd.read_csv(ArtifactStore(store).root / "demo" / "leaderboard.csv")


def built(output: str) -> int:
    """How many artifacts a run's lines say it built ("built", "3 built, 1 reused")."""
    return sum(int(n or 1) for n in re.findall(r": (?:(\d+) )?built\b", output))


def stored(store: str, cache: Path) -> int:
    """How many artifacts the store holds: committed records on S3, complete directories on a path."""
    if store.startswith("s3://"):
        from rlhf_core.store_remote import ObjectStore

        remote = ObjectStore(store)
        return len(remote.fs.glob(f"{remote.base}/**/commit.json"))
    return sum(1 for meta in Path(store).rglob("meta.json") if not any(p.startswith(".tmp") for p in meta.parts))


@pytest.fixture(scope="module")
def s3_store(s3_env):
    return new_bucket() + "/artifacts"


def test_the_demo_on_s3_gives_the_leaderboard_of_a_local_run(s3_store, tmp_path, monkeypatch):
    times = {}
    for where, store in (("local", str(tmp_path / "artifacts")), ("s3", s3_store)):
        t0 = time.time()
        finish(*start_run(tmp_path, store, where, tmp_path / f"{where}-cache"))
        times[where] = time.time() - t0
    local = leaderboard(str(tmp_path / "artifacts"), tmp_path / "local-cache", monkeypatch)
    on_s3 = leaderboard(s3_store, tmp_path / "s3-cache", monkeypatch)
    pd.testing.assert_frame_equal(local, on_s3)
    print(f"\nmicro demo: local path {times['local']:.1f}s, S3 {times['s3']:.1f}s "
          f"(+{100 * (times['s3'] / times['local'] - 1):.0f}%)")
    # another machine (an empty cache) finds everything committed: a re-run builds nothing
    again = finish(*start_run(tmp_path, s3_store, "s3-again", tmp_path / "fresh-cache"))
    assert built(again) == 0, again


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_runs_at_once_on_one_store_build_each_artifact_once(where, tmp_path, s3_env, monkeypatch):
    store = str(tmp_path / "artifacts") if where == "local" else new_bucket() + "/artifacts"
    cache = tmp_path / "cache"  # one machine: the runs share its cache (and its locks)
    t0 = time.time()
    runs = [start_run(tmp_path, store, f"run{i}", cache) for i in range(2)]
    outputs = [finish(*run) for run in runs]
    print(f"\ntwo micro demo runs at once on one {where} store: {time.time() - t0:.1f}s")
    assert built(outputs[0]) + built(outputs[1]) == stored(store, cache), outputs
    assert sorted(leaderboard(store, cache, monkeypatch)["algorithm"]) == ["a_lol", "dpo", "fg_ppo", "grpo", "nll", "ppo", "pro", "sft"]
