"""Every ``rlhf`` command shown in the README, docs/ and the task YAML headers parses and validates.

Each one goes through the real argument parser and then everything ``rlhf`` checks before work
starts: the task config with its ``--profile`` and ``--set`` values, and the ``--select`` and
``--rebuild`` names against the task's asset graph. What each executes: the seed headers'
``--select data`` commands run in ``test_seed_tasks``; ``rlhf run demo --select data``, ``rlhf tasks``
and ``rlhf status demo`` run here (the micro config's overrides before the command's own);
``rlhf run demo``, ``--select rl``, ``--select sft_model``, ``rlhf leaderboard demo`` and ``status``
run in ``test_pipeline`` on the micro config. Validated only: the commands that retrain the whole demo
with other settings (``--set policy.train.lr=1e-3``, ``--set policy.algorithms=...``, ``--rebuild
sft_model``; ``--rebuild`` itself runs in ``test_cli``) and the ``--profile gpu`` commands (CUDA).
"""
from __future__ import annotations

import re

import pytest

from pipelines.cli import _parser, main
from pipelines.runner import rebuild_closure, resolve_selection
from pipelines.task_defs import run_plan
from rlhf_core.config import load_config, task_config_path
from tests.dagster.documented import COMMANDS, shown
from tests.dagster.test_pipeline import micro_command


def test_the_docs_show_the_commands_a_user_needs():
    commands = {" ".join(argv[:2]) for _, argv in COMMANDS}
    assert {"run demo", "status demo", "tasks", "leaderboard demo"} <= commands
    assert len({where.split(":")[0] for where, _ in COMMANDS}) >= 12  # README, docs/gpu.md, every task YAML


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_documented_command_parses_and_validates(where, argv):
    args = _parser().parse_args(argv)
    if args.command in ("run", "status"):
        task = load_config(task_config_path(args.task), args.overrides, profile=args.profile)
        steps = run_plan(task)
        if args.command == "run":
            resolve_selection(args.task, steps, args.select)
            rebuild_closure(args.task, steps, args.rebuild)
    elif args.command == "leaderboard":
        assert task_config_path(args.task).exists(), where


def test_the_demo_data_command_runs_and_status_and_tasks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("RLHF_ARTIFACTS", str(tmp_path / "artifacts"))
    assert main(micro_command(shown("run demo --select data"))) == 0
    assert main(micro_command(shown("status demo"))) == 0
    assert re.search(r"^raw_world +materialized$", capsys.readouterr().out, re.M)
    assert main(shown("tasks")) == 0
    assert "demo " in capsys.readouterr().out
