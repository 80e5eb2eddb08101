"""`make ui`'s daemon shortens Dagster's backfill tick by setting a module constant; check it still works."""

import inspect

import dagster._daemon.backfill as backfill
import dagster._daemon.controller as controller

from pipelines import ui


def test_backfill_loop_reads_the_tick_from_the_controller_module_at_run_time():
    # The patch in pipelines/ui.run_daemon only takes effect if the loop looks the constant up in
    # dagster._daemon.controller when it starts (not a copy bound at import time).
    source = inspect.getsource(backfill.execute_backfill_iteration_loop)
    assert "from dagster._daemon.controller import DEFAULT_DAEMON_INTERVAL_SECONDS" in source
    assert "DEFAULT_DAEMON_INTERVAL_SECONDS - loop_duration" in source
    assert hasattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS")


def test_daemon_patch_sets_the_tick(monkeypatch):
    calls = []
    monkeypatch.setattr(controller, "DEFAULT_DAEMON_INTERVAL_SECONDS", controller.DEFAULT_DAEMON_INTERVAL_SECONDS)
    monkeypatch.setattr("dagster._daemon.cli.main", lambda: calls.append(controller.DEFAULT_DAEMON_INTERVAL_SECONDS))
    monkeypatch.setattr("sys.argv", ["x"])
    ui.run_daemon(["run", "-w", "workspace.yaml"])
    assert calls == [ui.BACKFILL_TICK_S]
