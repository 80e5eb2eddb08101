"""The micro demo end to end with its artifacts on S3 (a local S3-protocol server), against the same
on a local path; then two ``rlhf run`` processes at once on one store (the demo's data and SFT model),
local and S3, and on S3 a third from an empty cache (``make scale-check``).

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


def start_run(
    root: Path, store: str, name: str, cache: Path, select: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, Path]:
    """``rlhf run demo`` (the micro config) as its own process, with its own Dagster instance."""
    log = root / f"{name}.log"
    env = child_env({"RLHF_ARTIFACTS": store, "DAGSTER_HOME": str(root / f"{name}-home"), "RLHF_CACHE": str(cache)})
    flags = [x for group in select for x in ("--select", group)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "demo", *micro_args(), *flags],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return proc, log


def finish(proc: subprocess.Popen, log: Path) -> str:
    code = proc.wait(timeout=RUN_TIMEOUT_S)
    assert code == 0, log.read_text()[-3000:]
    return log.read_text()


def leaderboard(store: str, cache: Path, monkeypatch) -> pd.DataFrame:
    monkeypatch.setenv("RLHF_CACHE", str(cache))
    return pd.read_csv(ArtifactStore(store).root / "demo" / "leaderboard.csv")


def built(output: str) -> int:
    """How many artifacts a run's lines say it built: one line per asset ("sft_model: built", "annotated_responses
    [rm|0]: 3 built, 1 reused"); a step's own line ("reward_model, reward_model_eval [bt]: built") is not counted."""
    count = 0
    for line in output.splitlines():
        m = re.match(r"\s*\[\s*[\d.]+s\] (.+?): (?:(\d+) )?built\b", line)
        if m and ", " not in m[1] and " assets)" not in m[1]:
            count += int(m[2] or 1)
    return count


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
    print(
        f"\nmicro demo: local path {times['local']:.1f}s, S3 {times['s3']:.1f}s "
        f"(+{100 * (times['s3'] / times['local'] - 1):.0f}%)"
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_runs_at_once_on_one_store_build_each_artifact_once(where, tmp_path, s3_env):
    """The demo's data and models (SFT) twice at once on one machine, then (S3) from an empty cache."""
    store = str(tmp_path / "artifacts") if where == "local" else new_bucket() + "/artifacts"
    cache, select = tmp_path / "cache", ("data", "models")  # one machine: the runs share its cache and locks
    t0 = time.time()
    runs = [start_run(tmp_path, store, f"run{i}", cache, select) for i in range(2)]
    outputs = [finish(*run) for run in runs]
    print(f"\ntwo runs of the micro demo's data and models at once on one {where} store: {time.time() - t0:.1f}s")
    assert built(outputs[0]) + built(outputs[1]) == stored(store, cache) > 10, outputs
    if where == "s3":  # another machine: an empty cache, everything committed already
        again = finish(*start_run(tmp_path, store, "again", tmp_path / "fresh-cache", select))
        assert built(again) == 0 and "reused" in again, again
