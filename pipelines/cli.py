"""The ``rlhf`` command.

    rlhf run demo                                   # materialize the demo graph headless
    rlhf run demo --select rl --set policy.train.lr=1e-3
    rlhf run hh_rlhf --profile gpu                  # overlay configs/profiles/gpu.yaml
    rlhf leaderboard demo                           # print data/artifacts/demo/leaderboard.csv

``run`` goes through Dagster (the same assets and instance storage the UI sees); it belongs to
this shell, not to ``rlhf_core``. Paths resolve from the working directory (or
``RLHF_PROJECT_ROOT``); the Dagster instance lives in ``$DAGSTER_HOME``, by default
``./.dagster_home``. A single stage without Dagster: ``python -m rlhf_core.cli.stage --help``.
"""
from __future__ import annotations

import argparse
import os
import sys

from rlhf_core.config import project_root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlhf", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize a task's asset graph through Dagster")
    run.add_argument("task", help="a config name under configs/tasks/ (e.g. demo)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a task-config key (strict: unknown keys fail)")
    run.add_argument("--profile", metavar="NAME",
                     help="overlay configs/profiles/NAME.yaml (cpu, gpu, multi_gpu_zero3) before --set")
    run.add_argument("--select", action="append", default=[], metavar="ASSET_OR_GROUP",
                     help="an asset name (sft_model) or stage group (data, annotation, models, rl); default: all")
    board = sub.add_parser("leaderboard", help="print a task's exported leaderboard")
    board.add_argument("task")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("DAGSTER_HOME", str(project_root() / ".dagster_home"))
    from pipelines.runner import print_leaderboard, run_task

    if args.command == "run":
        return run_task(args.task, args.overrides, args.select, profile=args.profile)
    return print_leaderboard(args.task)


if __name__ == "__main__":
    sys.exit(main())
