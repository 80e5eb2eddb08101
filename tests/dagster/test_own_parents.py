"""A run reads the parents its own configuration gives, never another run's, and a killed
``--rebuild`` resumes from its own checkpoints.

Two configurations, the micro demo (A) and the same with a 280-word tokenizer (B), run
``rlhf run demo --select sft_model`` against one store: one after the other in both orders (in
process, as the other pipeline tests), and at the same time as two real processes. Afterwards every
artifact each configuration's refs name has, as the parents in its ``meta.json``, exactly the
artifacts of that same configuration; B's order also has the issue's sequence: a tokenizer built
with other settings, then a plain ``--select sft_model``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from pipelines.cli import main
from pipelines.runner import missing_upstream, resolve_selection
from pipelines.task_defs import run_plan
from resources.io_manager import RefIOManager, config_key
from rlhf_core.config import load_config, task_config_path
from rlhf_core.store import ArtifactRef
from rlhf_core.train.checkpoint_dir import COMPLETE, base_name
from tests.dagster.test_pipeline import MICRO, own_instance

REPO = Path(__file__).resolve().parents[2]
SFT = dg.AssetKey(["demo", "sft_model"])
A = MICRO
B = [*MICRO, "tokenizer.vocab_size=280"]


def argv(overrides: list[str], *extra: str) -> list[str]:
    return ["run", "demo", *(a for item in overrides for a in ("--set", item)), *extra]


def rlhf(overrides: list[str], *extra: str) -> int:
    return main([*argv(overrides, *extra), "--verbose"])


def own_lineage(root: Path, overrides: list[str]) -> dict[str, dict]:
    """The ``meta.json`` of every artifact up to the SFT model that ``overrides``' refs name, by asset,
    after checking each one's parents are the artifacts of the same configuration."""
    steps = run_plan(load_config(task_config_path("demo"), overrides))
    defs = {k: a for s in steps for a in s.assets for k in a.keys}
    upstream = dg.AssetSelection.assets(SFT).upstream().resolve(list(defs.values()))
    refs = RefIOManager(root=str(root / "artifacts"))
    metas = {}
    for asset in upstream:
        ref = ArtifactRef.from_json((refs.folder(asset, config_key(defs[asset], asset)) / "__all__.json").read_text())
        metas[asset] = {**json.loads((ref.dir / "meta.json").read_text()), "dir": ref.dir}
        assert metas[asset]["content_hash"] == ref.content_hash
    for asset in upstream:
        parents = {metas[p]["content_hash"] for p in defs[asset].asset_deps[asset]}
        assert set(metas[asset]["key_parts"]["parents"].values()) == parents, asset
    return {k.path[-1]: v for k, v in metas.items()}


def vocab_size(meta: dict) -> int:
    return json.loads((meta["dir"] / "config.json").read_text())["vocab_size"]


def test_one_after_the_other_in_both_orders_each_run_reads_its_own_parents(tmp_path, capsys):
    with own_instance(tmp_path / "a_then_b") as root:
        assert rlhf(A, "--select", "sft_model") == 0
        assert rlhf(B, "--select", "sft_model") == 0
        assert "lacks upstream: tokenizer" in capsys.readouterr().out  # B builds its own tokenizer first
        a, b = own_lineage(root, A), own_lineage(root, B)
        assert a["sft_data"] == b["sft_data"] and a["tokenizer"]["dir"] != b["tokenizer"]["dir"]
        assert vocab_size(a["sft_model"]) > vocab_size(b["sft_model"])

    with own_instance(tmp_path / "b_then_a") as root:
        assert rlhf(B, "--select", "tokenizer") == 0  # the sequence: another tokenizer, then SFT
        assert rlhf(A, "--select", "sft_model") == 0
        out = capsys.readouterr().out
        assert "lacks upstream: tokenizer" in out and "tokenizer: built" in out
        assert vocab_size(own_lineage(root, A)["sft_model"]) == vocab_size(a["sft_model"])


def test_two_processes_at_the_same_time_each_read_their_own_parents(tmp_path):
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ["PATH"],
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "RLHF_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv(o, "--select", "sft_model")],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for o in (A, B)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
    a, b = own_lineage(tmp_path, A), own_lineage(tmp_path, B)
    assert a["tokenizer"]["content_hash"] != b["tokenizer"]["content_hash"]
    assert vocab_size(a["sft_model"]) > vocab_size(b["sft_model"])


SLOW_SFT = [*MICRO, "sft.train.epochs=40", "sft.train.checkpoint_every=1"]  # 80 steps, a checkpoint after each


def newest_checkpoint(store: Path) -> int | None:
    """The newest complete checkpoint, as a resume finds it: a kill between marking ``step-N.tmp`` complete and
    renaming it leaves N there (CI once killed there: the test expected 1, the resume rightly took 2)."""
    steps = [
        int(base_name(p).removeprefix("step-"))
        for p in store.glob("demo/sft_model/*.rebuild-*.work/checkpoints/step-*")
        if (p / COMPLETE).exists()
    ]
    return max(steps, default=None)


def test_a_killed_rebuild_resumes_from_its_own_last_checkpoint(tmp_path, capsys):
    """kill -9 during ``rlhf run demo --select sft_model --rebuild sft_model``, once a checkpoint of the
    rebuild exists; the same command again resumes from the newest checkpoint and leaves no scratch
    folder behind (tests/core/test_store.py checks the scratch folders' rules one by one)."""
    with own_instance(tmp_path) as root:
        store = root / "artifacts"
        assert rlhf(SLOW_SFT, "--select", "sft_model") == 0
        command = argv(SLOW_SFT, "--select", "sft_model", "--rebuild", "sft_model")
        env = {
            "PYTHONPATH": str(REPO),
            "PATH": os.environ["PATH"],
            "HF_HUB_OFFLINE": "1",
            "DAGSTER_HOME": os.environ["DAGSTER_HOME"],
            "RLHF_ARTIFACTS": str(store),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *command],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 600
        while newest_checkpoint(store) is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
        killed_at = newest_checkpoint(store)
        assert killed_at is not None and killed_at < 80

        capsys.readouterr()
        assert main([*command, "--verbose"]) == 0
        assert "sft_model: built" in capsys.readouterr().out
        sft = own_lineage(root, SLOW_SFT)["sft_model"]
        assert sft["metadata"]["resumed_from"] == killed_at and sft["metadata"]["steps"] == 80
        assert not list(store.rglob("*.work")) and not list(store.rglob(".tmp-*"))


def test_a_selection_builds_only_the_parent_partitions_it_reads(tmp_path):
    """The human-feedback profile adds RMs that need labels first: the policies' run must not build them."""
    steps = run_plan(load_config(task_config_path("demo"), A, profile="human_feedback"))
    lacking = missing_upstream(steps, resolve_selection("demo", steps, ["rl"]), RefIOManager(root=str(tmp_path)))
    # the RMs the demo's scorers name (configs/tasks/demo.yaml), not human_ranking, human_holistic, ...
    assert lacking[dg.AssetKey(["demo", "reward_model"])] == {"bt", "holistic", "relevance", "factuality"}
    assert lacking[SFT] == {None}  # an unpartitioned parent: its one ref
