"""The engine across real processes: 2-rank data parallelism on CPU, and SIGKILL then resume.

Each test starts ``engine_worker.py`` (A-LoL on a tiny GPT-2, 6 steps of 4 rows, checkpoints
every 2 steps) as separate OS processes and compares the weights it writes.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_worker import assert_same_weights, tiny_lm
from safetensors.torch import load_file
from tiny_rl import tiny_policy

ROOT = Path(__file__).resolve().parents[2]
WORKER = str(Path(__file__).with_name("engine_worker.py"))
GATHER_WORKER = str(Path(__file__).with_name("gather_worker.py"))


def run_worker(
    out: Path, work: Path, *extra: str, torchrun: bool = False, expect_kill: bool = False, worker: str = WORKER
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        if torchrun
        else [sys.executable]
    )
    proc = subprocess.run(
        [*launcher, worker, str(out), *([str(work)] if work else []), *extra],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if expect_kill:
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
        return {}
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "run.json").read_text())


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "weights.safetensors")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted single-process run, without and with dropout."""
    root = tmp_path_factory.mktemp("straight")
    return {
        d: (run_worker(root / f"out{d}", root / f"work{d}", "--dropout", d), root / f"out{d}") for d in ("0", "0.1")
    }


def test_two_cpu_processes_train_the_same_weights_as_one(straight, tmp_path):
    run, out = straight["0"]
    ddp = run_worker(tmp_path / "out", tmp_path / "work", "--dropout", "0", torchrun=True)
    assert ddp["processes"] == 2 and run["processes"] == 1
    assert ddp["losses"] == pytest.approx(run["losses"], rel=1e-6)
    assert_same_weights(weights(out), weights(tmp_path / "out"), atol=2e-6)
    assert run["moved"] > 1e-3  # the weights trained, so their equality means something


def test_fsdp_shards_on_two_cpu_processes_are_gathered_into_the_whole_model(tmp_path):
    """``plain_copy`` of the gathered FSDP2 state: a plain GPT2LMHeadModel with exactly the weights
    that were sharded, which runs on rank 0 alone (accelerate's FSDP needs GPUs; torch's runs on gloo)."""
    run = run_worker(tmp_path / "out", None, torchrun=True, worker=GATHER_WORKER)
    assert run == {"sharded_param": "DTensor", "model_class": "GPT2LMHeadModel", "logits_finite": True}
    model, _ = tiny_lm()
    got = weights(tmp_path / "out")
    assert got.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(got[name], value), name


@pytest.mark.parametrize("kill", ["step:4", "save:4"])
def test_a_run_killed_mid_step_or_mid_save_resumes_to_the_same_weights(straight, tmp_path, kill):
    run, out = straight["0.1"]  # dropout on: the RNG state has to resume too
    run_worker(tmp_path / "out", tmp_path / "work", "--dropout", "0.1", "--kill", kill, expect_kill=True)
    checkpoints = sorted(p.name for p in (tmp_path / "work" / "checkpoints").iterdir())
    # Killed inside the save at step 4: its half-written folder is there, without the marker.
    assert checkpoints == (["step-00000002", "step-00000004.tmp"] if kill == "save:4" else ["step-00000002"])
    resumed = run_worker(tmp_path / "out", tmp_path / "work", "--dropout", "0.1")
    assert resumed["resumed_from"] == 2
    assert resumed["losses"] == run["losses"]
    expected, got = weights(out), weights(tmp_path / "out")
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


PPO_WORKER = str(Path(__file__).with_name("ppo_worker.py"))


@pytest.mark.parametrize("semantics", ["legacy_step", "grpo"])
def test_two_cpu_processes_roll_out_and_update_online_rl_as_one(tmp_path, semantics):
    """Each process rolls out half of the prompts (GRPO: its groups of 4 in halves of 6 rows), scores
    them and holds the whole rollout for the statistics; the update's minibatches are split over the
    processes. The same seed gives the same completions, history and weights as one process."""
    one = run_worker(tmp_path / "one", tmp_path / "work1", semantics, worker=PPO_WORKER)
    two = run_worker(tmp_path / "two", tmp_path / "work2", semantics, worker=PPO_WORKER, torchrun=True)
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["rollouts"] == one["rollouts"]
    assert len(one["history"]) == 3
    for a, b in zip(one["history"], two["history"]):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-7)
    # Adam divides by the root of a gradient's second moment, so on an entry whose gradient is nearly 0 (a
    # token the rollouts hardly use) a summation order's float noise grows: 3.4e-6 on one of the 9,600
    # lm_head entries here. Entries that train move by more than 1e-3 (below).
    assert_same_weights(weights(tmp_path / "one"), weights(tmp_path / "two"), atol=1e-5)
    before, _ = tiny_policy(seed=0)
    moved = max(
        float((weights(tmp_path / "one")[f"policy.{k}"] - v).abs().max()) for k, v in before.state_dict().items()
    )
    assert moved > 1e-3  # the policy trained, so equal weights mean something
