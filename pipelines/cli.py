"""The ``rlhf`` command.

    rlhf tasks                                      # the task configs and their descriptions
    rlhf run demo                                   # materialize the demo graph headless
    rlhf run demo --select rl --set policy.train.lr=1e-3
    rlhf run demo --rebuild sft_model               # build it and everything downstream again
    rlhf run hh_rlhf --profile gpu                  # overlay configs/profiles/gpu.yaml
    rlhf run qa_feedback --profile tiny             # fixtures and tiny models: configs/profiles/tiny/qa_feedback.yaml
    rlhf status demo                                # materialized, stale (and why) or missing
    rlhf leaderboard demo                           # print data/artifacts/demo/leaderboard.csv

``run`` goes through Dagster (the same assets and instance storage the UI sees); it belongs to
this shell, not to ``rlhf_core``. Paths resolve from the working directory (or
``RLHF_PROJECT_ROOT``); the Dagster instance lives in ``$DAGSTER_HOME``, by default
``./.dagster_home``. A single stage without Dagster: ``python -m rlhf_core.cli.stage --help``.
A user error (config, selection, missing input, corrupted artifact) prints one ``error:`` line and
exits with status 2; ``--debug`` shows its traceback, ``--verbose`` the libraries' logs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
from pathlib import Path

from rlhf_core.cli.common import guarded, output_flags, quiet_libraries
from rlhf_core.config import project_root, tasks_dir


def _config_args(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("task", help="a config name under configs/tasks/ (e.g. demo; see `rlhf tasks`)")
    sub.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a task-config key (strict: unknown keys fail)",
    )
    sub.add_argument(
        "--profile",
        metavar="NAME",
        help="overlay configs/profiles/NAME.yaml (cpu, gpu, multi_gpu_zero3), or the task's "
        "configs/profiles/NAME/TASK.yaml (tiny), before --set",
    )


def _parser() -> argparse.ArgumentParser:
    flags = output_flags()
    parser = argparse.ArgumentParser(prog="rlhf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", parents=[flags], help="materialize a task's asset graph through Dagster")
    _config_args(run)
    run.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="ASSET_OR_GROUP",
        help="an asset name (sft_model) or stage group (data, annotation, models, rl); default: all",
    )
    run.add_argument(
        "--rebuild",
        action="append",
        default=[],
        metavar="ASSET_OR_GROUP",
        help="build this asset and everything downstream again, even where the store has it",
    )
    status = sub.add_parser(
        "status", parents=[flags], help="each asset and partition: materialized, stale (and why) or missing"
    )
    _config_args(status)
    sub.add_parser("tasks", parents=[flags], help="list the task configs with their descriptions")
    board = sub.add_parser("leaderboard", parents=[flags], help="print a task's exported leaderboard")
    board.add_argument("task")
    return parser


def description(path: Path) -> str:
    """A task config's description: its leading comment lines up to the first indented one (the
    header's example commands, ``#   rlhf run ...``), joined into one paragraph."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith("# ") or line.startswith("#  "):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def print_tasks() -> int:
    """Each task and its whole description, wrapped under the name column to the terminal's width."""
    paths = sorted(tasks_dir().glob("*.yaml"))
    width = max((len(p.stem) for p in paths), default=0)
    columns = max(shutil.get_terminal_size().columns, width + 40)
    for path in paths:
        print(
            textwrap.fill(
                description(path),
                columns,
                initial_indent=f"{path.stem:<{width}}  ",
                subsequent_indent=" " * (width + 2),
                break_on_hyphens=False,
            )
        )
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    os.environ.setdefault("DAGSTER_HOME", str(project_root() / ".dagster_home"))
    if args.command == "tasks":
        return print_tasks()
    if args.command == "status":
        from pipelines.status import print_status

        return print_status(args.task, args.overrides, profile=args.profile)
    from pipelines.runner import print_leaderboard, run_task

    if args.command == "run":
        return run_task(
            args.task, args.overrides, args.select, profile=args.profile, rebuild=args.rebuild, verbose=args.verbose
        )
    return print_leaderboard(args.task)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_libraries(args.verbose)
    return guarded(lambda: _dispatch(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
