"""Every ``rlhf`` command shown in the README, docs/ and the task YAML headers parses and validates.

Each one goes through the real argument parser and then everything ``rlhf`` checks before work
starts: the task config with its ``--profile`` and ``--set`` values, and the ``--select`` and
``--rebuild`` names against the task's asset graph. Where each is executed (the demo's on the micro
config: its overrides before the command's own flags, which win):

- here: ``rlhf run demo --select data``, ``rlhf status demo``, ``rlhf tasks``;
- ``test_seed_tasks``: each seed YAML header's ``rlhf run <task> --select data --set ...``;
- ``test_pipeline``: ``rlhf run demo``, ``--select rl``, ``--select sft_model``, ``rlhf leaderboard
  demo``, ``rlhf status demo``, and the retrains on the store it built: ``--set policy.train.lr=1e-3``
  (interrupted by SIGINT, then run again to the end), ``--set policy.algorithms=[...] --set
  sft.train.epochs=8`` and ``--rebuild sft_model``.

Validated only: the ``--profile gpu`` and ``--profile multi_gpu_zero3`` commands of docs/gpu.md, which
need CUDA (``tests/gpu`` runs their stages on a GPU box), and its ``RLHF_LAUNCHER=subprocess rlhf run
demo --set launcher.processes=2 --set launcher.cpu=true``, the whole demo with every heavy stage in
2 processes, too slow for the suite: ``test_launcher`` runs ``sft_model`` with those settings.
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
        steps = run_plan(task, incoming=bool(getattr(args, "select", None)))
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


def test_the_readme_names_every_stage_group_of_the_demo():
    """The README's ``--select`` comment lists the groups ``rlhf run`` knows (incoming has its own line)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = re.search(r"# one stage group: ([\w, ]+)\n", readme).group(1).split(", ")
    steps = run_plan(load_config(task_config_path("demo")), incoming=True)
    groups = {a.group_names_by_key[k].removeprefix("demo_") for s in steps for a in s.assets for k in a.keys}
    assert sorted(listed) == sorted(groups - {"incoming"}) and "rlhf run demo --select incoming" in readme
