"""Two torchrun "nodes" on loopback, started by the subprocess launcher's command for several nodes
(``launcher: {nodes: 2, node_rank: 0|1, rdzv_endpoint: 127.0.0.1:PORT}``), meet at torch's c10d
rendezvous and train as one run of two processes: SFT's loss on the engine, and PPO. Each result
equals one process's on the same global batch."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from resources.launcher import launch_command
from rlhf_core.config.launch import LauncherConfig
from tests.core.engine_worker import assert_same_weights

ROOT = Path(__file__).resolve().parents[2]
ENGINE_WORKER = str(ROOT / "tests" / "core" / "engine_worker.py")
PPO_WORKER = str(ROOT / "tests" / "core" / "ppo_worker.py")
ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "ACCELERATE_USE_CPU": "true",
    "OMP_NUM_THREADS": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_process(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, *args],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def two_nodes(args: list[str]) -> list[str]:
    """Both nodes' commands, as ``launch_command`` builds them, run at once; returns them."""
    cfg = LauncherConfig(nodes=2, rdzv_endpoint=f"127.0.0.1:{free_port()}")
    commands = [launch_command(sys.executable, dataclasses.replace(cfg, node_rank=rank), args) for rank in (0, 1)]
    procs = [
        subprocess.Popen(
            c,
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    return commands


def test_sft_on_two_loopback_nodes_equals_one_process(tmp_path):
    one_process(
        [
            ENGINE_WORKER,
            str(tmp_path / "one"),
            str(tmp_path / "w1"),
            "--algorithm",
            "nll",
        ]
    )
    commands = two_nodes(
        [
            ENGINE_WORKER,
            str(tmp_path / "two"),
            str(tmp_path / "w2"),
            "--algorithm",
            "nll",
        ]
    )
    assert commands[1][3:7] == ["--nnodes", "2", "--node_rank", "1"]
    one, two = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-6)
    assert_same_weights(
        load_file(tmp_path / "one" / "weights.safetensors"),
        load_file(tmp_path / "two" / "weights.safetensors"),
        atol=2e-6,
    )
    assert one["moved"] > 1e-3


def test_ppo_on_two_loopback_nodes_equals_one_process(tmp_path):
    one_process([PPO_WORKER, str(tmp_path / "one"), str(tmp_path / "w1"), "legacy_step"])
    two_nodes([PPO_WORKER, str(tmp_path / "two"), str(tmp_path / "w2"), "legacy_step"])
    one, two = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("one", "two"))
    assert (one["processes"], two["processes"]) == (1, 2)
    assert two["rollouts"] == one["rollouts"]
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-7)
    assert_same_weights(
        load_file(tmp_path / "one" / "weights.safetensors"),
        load_file(tmp_path / "two" / "weights.safetensors"),
        atol=2e-6,
    )
