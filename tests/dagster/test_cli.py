"""The ``rlhf`` command as a user meets it: one-line user errors (exit 2), status, rebuild, tasks.

In process through ``pipelines.cli.main`` (with ``--verbose``, so the test process keeps its warning
filters), except where the exit status and stderr of a real process are the point.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from rlhf_core.stages.base import TABLE
from tests.dagster.test_pipeline import micro_args, own_instance

REPO = Path(__file__).resolve().parents[2]
MICRO_ARGS = micro_args()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo's data group on the micro config, in its own instance and store."""
    with own_instance(tmp_path_factory.mktemp("cli")) as root:
        assert main(["run", "demo", "--select", "data", "--verbose", *MICRO_ARGS]) == 0
        yield root


def rlhf(*argv: str, env_root: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    if env_root is not None:
        env |= {"DAGSTER_HOME": str(env_root / "dagster_home"), "RLHF_ARTIFACTS": str(env_root / "artifacts")}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *argv], cwd=REPO, capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nosuchtask"], "no such task config; known: ["),
        (["run", "demo", "--set", "policy.train.lr=fast"], "policy.train.lr: expected a number, got 'fast'"),
        (["run", "demo", "--select", "nosuchasset"], "--select 'nosuchasset': not an asset or group of demo"),
        (["run", "demo", "--rebuild", "nosuchasset"], "--rebuild 'nosuchasset': not an asset or group of demo"),
        (["status", "nosuchtask"], "no such task config"),
    ],
)
def test_a_user_error_is_one_error_line_and_status_2(argv, message, capsys):
    assert main([*argv, "--verbose"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_a_missing_input_fails_its_dagster_step_with_the_same_one_line(tmp_path, monkeypatch, capsys):
    """The reddit header without its ``--set ...path=`` overrides: the default raw folder is not there."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path / "artifacts"))
    assert main(["run", "reddit", "--select", "data", "--verbose"]) == 2
    out, err = capsys.readouterr()
    assert "FAILED raw_reddit" in out
    assert err.strip().splitlines()[-1].startswith("error: source path ") and "does not exist" in err


def test_a_real_process_prints_only_the_line_and_debug_adds_the_traceback(tmp_path):
    plain = rlhf("run", "nosuchtask", env_root=tmp_path)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()] and plain.stderr.startswith("error: ")
    debug = rlhf("run", "nosuchtask", "--debug", env_root=tmp_path)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()


def test_a_bug_keeps_its_traceback():
    from rlhf_core.cli.common import guarded

    def bug() -> int:
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):
        guarded(bug, debug=False)


def test_ctrl_c_is_one_interrupted_line_and_status_130(capsys):
    """Both command lines go through ``guarded``; ``rlhf run`` says where it was (a real process is
    interrupted in ``test_pipeline``)."""
    from rlhf_core.cli.common import guarded
    from rlhf_core.errors import Interrupted

    def ctrl_c() -> int:
        raise KeyboardInterrupt

    def ctrl_c_in_a_step() -> int:
        raise Interrupted("during sft_model (step 1 of 2); run the same command again to resume")

    assert guarded(ctrl_c, debug=False) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert guarded(ctrl_c_in_a_step, debug=False) == 130
    assert (
        capsys.readouterr().err == "interrupted: during sft_model (step 1 of 2); run the same command again to resume\n"
    )
    assert guarded(ctrl_c, debug=True) == 130
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_tasks_lists_every_config_with_its_whole_description(capsys):
    """The header's comment paragraph, every sentence to its end, without the example commands."""
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    entries = {}  # a task's name starts a line; its wrapped description continues on indented lines
    for line in out.splitlines():
        if not line.startswith(" "):
            name, _, line = line.partition(" ")
            entries[name] = ""
        entries[name] = " ".join((entries[name] + " " + line).split())
    assert sorted(entries) == sorted(p.stem for p in (REPO / "configs" / "tasks").glob("*.yaml"))
    assert entries["demo"].startswith("The offline demo task")
    assert entries["rlhflow"].endswith("Then the three reward models (BT, pair-PM, ArmoRM) and RewardBench.")
    assert all(text.endswith(".") and "rlhf run" not in text for text in entries.values()), entries


def status(capsys, *extra: str) -> dict[str, str]:
    assert main(["status", "demo", "--verbose", *MICRO_ARGS, *extra]) == 0
    rows = capsys.readouterr().out.splitlines()[:-1]  # the last line counts
    return {line.split("  ")[0]: line.split("  ", 1)[1].strip() for line in rows}


def test_status_shows_materialized_missing_and_stale_after_a_config_change(demo_data, capsys):
    now = status(capsys)
    assert now["raw_world"] == "materialized" and now["sft_model"] == "missing"
    changed = status(capsys, "--set", "world.n_entities=13")
    assert changed["raw_world"] == "stale (config changed)"
    assert changed["raw_feedback"] == "stale (config changed)"  # it reads world as well
    assert changed["clean_feedback"] == "materialized (upstream stale: raw_feedback)"


def test_a_tampered_table_fails_the_step_that_reads_it_and_rebuild_repairs_it(demo_data, capsys):
    table = next((demo_data / "artifacts" / "demo" / "raw_feedback").glob(f"*/{TABLE}"))
    table.write_bytes(table.read_bytes()[:-100])
    # clean_feedback reads raw_feedback: forced to rebuild, it finds the truncated table
    assert main(["run", "demo", "--select", "data", "--rebuild", "clean_feedback", "--verbose", *MICRO_ARGS]) == 2
    out, err = capsys.readouterr()
    assert "FAILED" in out
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith(f"error: artifact {table.parent}: {TABLE}") and "rlhf run demo --rebuild raw_feedback" in last
    )
    assert main(["run", "demo", "--select", "data", "--rebuild", "raw_feedback", "--verbose", *MICRO_ARGS]) == 0
    out = capsys.readouterr().out
    assert "rebuilding" in out and "clean_feedback" in out.splitlines()[0]


def test_a_deleted_parent_folder_names_the_artifact_and_its_rebuild_command(demo_data, capsys):
    """Not a loader's confusing error about the missing path (a model loader takes it for a hub id)."""
    import shutil

    (folder,) = [p for p in (demo_data / "artifacts" / "demo" / "raw_feedback").iterdir() if p.is_dir()]
    shutil.rmtree(folder)
    # a new cleaning setting: clean_feedback has to be built, from raw_feedback
    argv = ["--verbose", *MICRO_ARGS, "--set", "datasets.clean_feedback.options.max_response_chars=599"]
    assert main(["run", "demo", "--select", "clean_feedback", *argv]) == 2
    out, err = capsys.readouterr()
    assert "FAILED clean_feedback" in out  # --verbose: Dagster's own log of the failure comes first
    assert err.strip().splitlines()[-1] == (
        f"error: parent artifact demo/raw_feedback ({folder}) is gone or incomplete "
        "(no meta.json); rebuild it: rlhf run demo --rebuild raw_feedback"
    )
    assert main(["run", "demo", "--select", "data", "--rebuild", "raw_feedback", "--verbose", *MICRO_ARGS]) == 0


def test_each_step_says_when_it_starts(demo_data, capsys):
    assert main(["run", "demo", "--select", "raw_world", "--select", "clean_feedback", "--verbose", *MICRO_ARGS]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "starting raw_world, clean_feedback (step 1 of 1)", lines  # before the step's own lines
    assert lines[-2].endswith("] raw_world, clean_feedback: reused (" + lines[-2].split(" (")[-1]), lines


def test_a_run_is_listed_under_its_step_job_and_ctrl_c_marks_it_canceled(demo_data, capsys):
    """Runs of ``rlhf run`` carry the UI's job names (not ``__ephemeral_asset_job__``); SIGINT while a
    step runs ends its run as CANCELED, as the UI's Terminate would, not as a failure."""
    import os
    import signal
    import threading
    import time

    import dagster as dg

    from pipelines.instance import instance

    inst = instance()
    runs_before = {r.run_id for r in inst.get_runs()}
    assert all(r.job_name != "__ephemeral_asset_job__" for r in inst.get_runs())
    assert {r.job_name for r in inst.get_runs()} >= {"demo_data_and_models"}

    def interrupt_once_a_run_starts() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            started = [
                r
                for r in inst.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
                if r.run_id not in runs_before
            ]
            if started:
                time.sleep(0.5)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=interrupt_once_a_run_starts, daemon=True)
    watcher.start()
    # a new cleaning setting: a step with work to do, long enough to be interrupted
    code = main(
        [
            "run",
            "demo",
            "--select",
            "data",
            "--verbose",
            *MICRO_ARGS,
            "--set",
            "datasets.clean_feedback.options.max_response_chars=598",
        ]
    )
    watcher.join()
    assert code == 130, capsys.readouterr()
    new = [r for r in inst.get_runs() if r.run_id not in runs_before]
    assert [(r.job_name, r.status) for r in new] == [("demo_data_and_models", dg.DagsterRunStatus.CANCELED)]


def test_incoming_days_are_scored_from_the_command_line_only_when_selected(demo_data, tmp_path, capsys):
    """``--select incoming``: every scorer on each day folder present, then the day's reward; an
    undecodable file is quarantined whole and the day's other file is scored."""
    import json

    import pandas as pd

    incoming = tmp_path / "incoming"
    argv = [
        "--verbose",
        *MICRO_ARGS,
        "--set",
        "policy=null",
        "--set",
        "evaluation=null",
        "--set",
        "annotation.scorers={length: {scorer: length}}",
        "--set",
        f"annotation.incoming.folder={incoming}",
    ]
    assert main(["run", "demo", "--select", "incoming", *argv]) == 2
    assert f"has no incoming day to score: drop <YYYY-MM-DD>/*.jsonl files into {incoming}" in capsys.readouterr().err
    day = incoming / "2026-11-22"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_text(
        "".join(json.dumps({"prompt": "Q?", "completion": c}) + "\n" for c in (" A b.", " C."))
    )
    (day / "b.jsonl").write_bytes(b'{"prompt": "caf\xe9", "completion": "x"}\n')
    assert main(["run", "demo", "--select", "reward_scorers", "--select", "incoming", *argv]) == 0
    out = capsys.readouterr().out
    assert "annotated_incoming [2026-11-22|length]: built" in out and "incoming_rewards [2026-11-22]: built" in out
    (ref,) = (demo_data / "artifacts" / "_refs" / "demo" / "incoming_rewards").glob(
        "*/2026-11-22.json"
    )  # its config key
    rewards = pd.read_parquet(Path(json.loads(ref.read_text())["path"]) / TABLE)
    assert sorted(rewards["length"]) == [1.0, 2.0]
