"""Every bad input a user can give ends in one ``error:`` line and exit status 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_invalid_yaml_names_the_file_line_and_column(tmp_path, monkeypatch, capsys):
    (tmp_path / "configs" / "tasks").mkdir(parents=True)
    (tmp_path / "configs" / "tasks" / "broken.yaml").write_text("task: broken\nseed: 1\nsft:\n  data: [a, b\n")
    monkeypatch.setenv("RLHF_PROJECT_ROOT", str(tmp_path))
    assert main(["run", "broken", "--verbose"]) == 2
    line = one_error_line(capsys)
    assert "broken.yaml:5:1: invalid YAML:" in line and "expected ',' or ']'" in line, line


@pytest.mark.parametrize(
    "override, message",
    [
        ("sft.train.epochs=-1", "demo.yaml: sft.train.epochs: must be positive, got -1"),
        ("policy.algorithms=[nll, foo]", "demo.yaml: policy: algorithms: unknown ['foo']"),
    ],
)
def test_bad_counts_and_names_fail_before_the_first_step(override, message, capsys):
    assert main(["run", "demo", "--verbose", "--set", override]) == 2
    assert message in one_error_line(capsys)
    assert capsys.readouterr().out == ""  # not a single step ran


def rlhf(*argv: str, env: dict, user: int | None = None) -> subprocess.CompletedProcess:
    """A real ``rlhf`` process; ``user``: run it as that uid (root ignores permission bits)."""
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pipelines.cli", *argv],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", **env},
    )


def assert_one_error_line(proc: subprocess.CompletedProcess, message: str) -> None:
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_store_path_that_is_a_file_or_cannot_be_created_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "store").write_text("")
    for root, message in [("store", "is a file, not a folder"), ("store/sub", "is not writable (Not a directory)")]:
        monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path / root))
        assert main(["run", "demo", "--select", "data", "--verbose"]) == 2
        assert f"error: the artifact store (RLHF_ARTIFACTS) {tmp_path / root} {message}" in one_error_line(capsys)


def test_a_read_only_store_is_one_line():
    top = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp folders are private to their user
    store, home = top / "store", top / "dagster_home"
    store.mkdir()
    store.chmod(0o555)
    home.mkdir()
    home.chmod(0o777)
    top.chmod(0o755)
    user = None
    if os.geteuid() == 0:  # root writes anyway: run as nobody, who may not write a root-owned 0555 folder
        if shutil.which("setpriv") is None:
            pytest.skip("as root, a read-only folder needs setpriv to run as another user")
        user = 65534
    proc = rlhf(
        "run", "demo", "--select", "data", env={"RLHF_ARTIFACTS": str(store), "DAGSTER_HOME": str(home)}, user=user
    )
    shutil.rmtree(top)
    assert_one_error_line(proc, f"the artifact store (RLHF_ARTIFACTS) {store} is not writable (Permission denied)")


@pytest.mark.parametrize(
    "hub",
    [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["offline_mode", "unreachable"],
)
def test_a_source_that_needs_a_download_offline_names_it_and_the_local_alternatives(hub, tmp_path, monkeypatch, capsys):
    for name, value in {
        **hub,
        "HF_HOME": str(tmp_path / "hf"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "RLHF_ARTIFACTS": str(tmp_path / "artifacts"),
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "hh_rlhf", "--select", "raw_hh_rlhf"]) == 2
    out, err = capsys.readouterr()
    assert "FAILED raw_hh_rlhf" in out
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("error: ")]
    assert (
        line.startswith("error: source hh_rlhf: dataset Anthropic/hh-rlhf@")
        and "--set sources.hh_rlhf.path=DIR" in line
    )
    assert line.endswith(
        "header of configs/tasks/hh_rlhf.yaml: rlhf run hh_rlhf --select data "
        "--set sources.hh_rlhf.path=data/fixtures/hh_rlhf --set sources.hh_first_prompt.path="
        "data/fixtures/hh_first_prompt --set datasets.rm_pairs.options.tokenizer='{path: data/fixtures/"
        "word_tokenizer}' --set datasets.ppo_prompts.options.tokenizer='{path: data/fixtures/"
        "word_tokenizer}'"
    ), line
    assert err.strip().splitlines()[-1] == line and "Traceback" not in err
