"""Every bad input a user can give ends in one ``error:`` line and exit status 2, no traceback."""
from __future__ import annotations

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


@pytest.mark.parametrize("override, message", [
    ("sft.train.epochs=-1", "demo.yaml: sft.train.epochs: must be positive, got -1"),
    ("policy.algorithms=[nll, foo]", "demo.yaml: policy: algorithms: unknown ['foo']"),
])
def test_bad_counts_and_names_fail_before_the_first_step(override, message, capsys):
    assert main(["run", "demo", "--verbose", "--set", override]) == 2
    assert message in one_error_line(capsys)
    assert capsys.readouterr().out == ""  # not a single step ran
