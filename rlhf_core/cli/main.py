"""The ``rlhf`` command.

    rlhf run demo                                   # materialize the demo graph headless
    rlhf run demo --select rl --set policy.train.lr=1e-3
    rlhf run hh_rlhf --profile gpu                  # overlay configs/profiles/gpu.yaml
    rlhf leaderboard demo                           # print data/artifacts/demo/leaderboard.csv

``run`` goes through Dagster (the same assets and instance storage the UI sees), so it imports
the repo's ``pipelines`` package lazily; the rest of rlhf_core never imports dagster.
"""
from __future__ import annotations

import argparse
import os
import sys

from rlhf_core.config import PROJECT_ROOT


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
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / ".dagster_home"))
    sys.path.insert(0, str(PROJECT_ROOT))  # pipelines/, assets/, resources/ are app folders, not installed
    if args.command == "run":
        from pipelines.runner import run_task

        return run_task(args.task, args.overrides, args.select, profile=args.profile)
    from pipelines.runner import print_leaderboard

    return print_leaderboard(args.task)


if __name__ == "__main__":
    sys.exit(main())
