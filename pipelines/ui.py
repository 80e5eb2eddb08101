"""`make ui`: the Dagster webserver and daemon for this project, bound to 127.0.0.1.

    python -m pipelines.ui                 # http://127.0.0.1:3000
    python -m pipelines.ui --port 3001

It does what ``dg dev -w workspace.yaml`` does (a webserver and a daemon on the project's instance,
see ``pipelines/instance.py``) with one difference that matters for "Materialize all": Dagster's
daemon looks at asset backfills every 30 seconds, a constant meant for a production deployment
with many backfills. A backfill starts the runs of a dependency level only at such a tick, so on
the demo (six levels, each run a minute or less) half the wall time was spent waiting for ticks.
Here the daemon ticks every ``BACKFILL_TICK_S`` seconds; one tick costs a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from pipelines.instance import apply_pools, ensure_home, instance

BACKFILL_TICK_S = 3
WORKSPACE = ["-w", "workspace.yaml"]


def run_daemon(argv: list[str]) -> None:
    """Dagster's daemon (``dagster-daemon run ...``) with the backfill tick shortened."""
    import dagster._daemon.controller as controller
    from dagster._daemon.cli import main

    # The backfill loop reads this module attribute on each start (dagster/_daemon/backfill.py);
    # tests/dagster/test_ui_launcher.py fails if a Dagster upgrade stops doing so.
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = BACKFILL_TICK_S
    sys.argv = ["dagster-daemon", *argv]
    main()


def serve(port: int) -> int:
    home = ensure_home()
    if os.environ.get("RLHF_INSTANCE") == "postgres":  # several runs at once: each GPU class's slots
        print(f"pool limits: {apply_pools(instance())}", flush=True)
    print(f"DAGSTER_HOME={home}; the UI is at http://127.0.0.1:{port}", flush=True)
    procs = [
        subprocess.Popen([sys.executable, "-m", "dagster_webserver", *WORKSPACE, "-h", "127.0.0.1", "-p", str(port)]),
        subprocess.Popen([sys.executable, "-m", "pipelines.ui", "--daemon", "run", *WORKSPACE]),
    ]
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0) for p in procs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--daemon"]:
        run_daemon(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m pipelines.ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=3000)
    return serve(parser.parse_args(argv).port)


if __name__ == "__main__":
    sys.exit(main())
