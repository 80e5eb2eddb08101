"""The UI's "Materialize all" against `rlhf run` on the same task, each from an empty store.

Both run the same assets and write the same artifacts; the UI path adds what a person pays for
launching from the browser: a process per run, the daemon's backfill ticks (pipelines/ui.py) between
dependency levels, and the run queue. Each side starts from its own empty artifact store and
Dagster instance, then runs a second time with nothing changed (everything comes from the cache).

    python benchmarks/bench_ui.py                                  # the demo, ~10 minutes on 2 cores
    python benchmarks/bench_ui.py --set sft.train.epochs=1         # a smaller demo

Prints one line per comparison: ``ui: materialize all vs rlhf run <ratio>x`` (UI time / CLI time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pipelines/ is an app folder, not installed
from pipelines.ui_client import REPO, serve  # noqa: E402
from rlhf_core.config import apply_override, tasks_dir  # noqa: E402


def env_for(root: Path, tasks: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "dagster_home"),
        "RLHF_ARTIFACTS": str(root / "artifacts"),
        "RLHF_TASKS_DIR": str(tasks),
    }


def time_cli(task: str, overrides: list[str], env: dict[str, str]) -> float:
    sets = [arg for item in overrides for arg in ("--set", item)]
    start = time.time()
    subprocess.run(
        [str(Path(sys.executable).parent / "rlhf"), "run", task, *sets],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.time() - start


def time_ui(ui, task: str) -> float:
    assets = ui.task_assets(task, without_groups=(f"{task}_incoming",))
    start = time.time()
    backfill = ui.wait_for_backfill(ui.materialize_all(assets), timeout_s=3600)
    if backfill["status"] not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise RuntimeError(f"the backfill ended {backfill['status']}: {backfill}")
    return time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tasks = tmp / "tasks"
        tasks.mkdir()
        raw = yaml.safe_load((tasks_dir() / f"{args.task}.yaml").read_text())
        for item in args.overrides:
            apply_override(raw, item, f"{args.task}.yaml")
        (tasks / f"{args.task}.yaml").write_text(yaml.safe_dump(raw))

        cli_env = env_for(tmp / "cli", tasks)
        cli, gui = [], []
        for label in ("from an empty store", "re-run"):
            cli.append(time_cli(args.task, args.overrides, cli_env))
            print(f"rlhf run ({label}): {cli[-1]:.1f} s", flush=True)
        (tmp / "ui").mkdir()
        with serve(env_for(tmp / "ui", tasks), tmp / "ui" / "ui.log") as ui:
            for label in ("from an empty store", "re-run"):
                gui.append(time_ui(ui, args.task))
                print(f"materialize all ({label}): {gui[-1]:.1f} s", flush=True)
    for label, c, u in (("from an empty store", cli[0], gui[0]), ("re-run, nothing changed", cli[1], gui[1])):
        print(f"{label}: rlhf run {c:.1f} s, materialize all {u:.1f} s")
        print(f"ui: materialize all vs rlhf run {u / c:.2f}x ({label})")


if __name__ == "__main__":
    main()
