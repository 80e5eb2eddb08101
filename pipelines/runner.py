"""Headless materialization of a task's graph on the persistent Dagster instance (``rlhf run``).

A line as each step starts, and one per finished step: when it finished, what it materialized, whether the store built the
artifacts or found them, and how long it took. A step that fails prints ``FAILED <step>`` and
re-raises, so the command line reports a user error as one line and a bug with its traceback.
Ctrl-C ends the run with one ``interrupted`` line naming the step that was running (exit 130).
A ``--select`` also runs what this configuration lacks upstream (``missing_upstream``): each step
reads its parents under its own configuration's keys (resources/io_manager.py).
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pandas as pd
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph  # partition mappings walked (no public API)

from pipelines.instance import instance
from pipelines.task_defs import Step, run_plan
from resources import artifact_root, build_resources
from resources.io_manager import RefIOManager
from rlhf_core.config import ConfigError, load_config, task_config_path
from rlhf_core.errors import Interrupted, MissingInputError, UserError
from rlhf_core.paths import writable_folder
from rlhf_core.stages.annotation import incoming_folder
from rlhf_core.stages.evaluation import LEGEND
from rlhf_core.store import ArtifactStore
from rlhf_core.store_remote import is_remote

MANY = 3  # a step of more assets is named by its job, not by listing them


def _logs(verbose: bool) -> dict:
    # Dagster's own console log: its step events duplicate our lines and a failure's traceback
    # duplicates the error we print, so only --verbose shows it.
    return {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}


def resolve_selection(task: str, steps, select: list[str], flag: str = "--select") -> set[dg.AssetKey]:
    every = {k for s in steps for k in s.keys}
    if not select:
        return every
    groups = {}
    for s in steps:
        for a in s.assets:
            for k in a.keys:
                groups.setdefault(a.group_names_by_key[k].removeprefix(f"{task}_"), set()).add(k)
    chosen: set[dg.AssetKey] = set()
    for item in select:
        if item in groups:
            chosen |= groups[item]
        elif dg.AssetKey([task, item]) in every:
            chosen.add(dg.AssetKey([task, item]))
        else:
            raise ConfigError(
                f"{flag} {item!r}: not an asset or group of {task}; groups: {sorted(groups)}, "
                f"assets: {sorted(k.path[-1] for k in every)}"
            )
    return chosen


def rebuild_closure(task: str, steps: list[Step], rebuild: list[str]) -> set[str]:
    """Names of the assets ``--rebuild`` forces: those named and everything downstream of them."""
    if not rebuild:
        return set()
    named = resolve_selection(task, steps, rebuild, "--rebuild")
    every_asset = [a for s in steps for a in s.assets]
    return {k.path[-1] for k in dg.AssetSelection.assets(*named).downstream().resolve(every_asset)}


def missing_upstream(
    steps: list[Step], chosen: set[dg.AssetKey], refs: RefIOManager
) -> dict[dg.AssetKey, set[str | None]]:
    """The partitions upstream of ``chosen`` (every partition of each) that have no ref under this
    configuration's key: the run builds them too (the store finds each one it has, cheaply), so a step
    never reads a parent built under another configuration, nor stops because this configuration lacks
    one. Partition by partition, through the assets' partition mappings: a parent partition no chosen
    asset reads (an RM no scorer names, one that needs labels first) is not built."""
    every_asset = {k: a for s in steps for a in s.assets for k in a.keys}
    graph = AssetGraph.from_assets(list({id(a): a for a in every_asset.values()}.values()))
    todo = [(k, p) for s in steps for k in s.keys if k in chosen for p in s.partitions]
    seen, lacking = set(todo), {}
    while todo:
        for parent in graph.get_parents_partitions(*todo.pop()).parent_partitions:
            at = (parent.asset_key, parent.partition_key)
            if parent.asset_key in chosen or at in seen:
                continue
            seen.add(at)
            todo.append(at)
            if not refs.has_ref(every_asset[parent.asset_key], *at):
                lacking.setdefault(parent.asset_key, set()).add(parent.partition_key)
    return lacking


def _label(task: str, step: Step, keys: list[dg.AssetKey], partition: str | None) -> str:
    names = (
        ", ".join(k.path[-1] for k in keys)
        if len(keys) <= MANY
        else f"{step.job.removeprefix(task + '_')} ({len(keys)} assets)"
    )
    return names + (f" [{partition}]" if partition else "")


def _names(keys) -> str:
    return ", ".join(sorted(k if isinstance(k, str) else k.path[-1] for k in keys))


def _outcome(metas: list) -> str:
    """ "built", "reused" (found in the store) or a count of each, from the assets' ``cached`` metadata
    (an asset that passes a parent's artifact on, as the sft baseline policy, reports neither)."""
    cached = [m["cached"].value for m in metas if "cached" in m]
    reused, built = sum(cached), len(cached) - sum(cached)
    if built and reused:
        return f"{built} built, {reused} reused"
    return "reused" if reused else "built" if built else "done"


def _step_lines(result: dg.ExecuteInProcessResult, elapsed: float, partition: str | None) -> tuple[list[str], list]:
    """One line per asset of a finished step, in the order they finished, each with its own time
    (indented: the step's own line follows them), and the metadata of everything it materialized."""
    metas: dict[str, list] = {}
    lines = []
    for event in result.all_events:
        if event.is_step_materialization:
            metas.setdefault(event.step_key, []).append(event.event_specific_data.materialization.metadata)
        elif event.is_step_success:
            seconds = event.event_specific_data.duration_ms / 1000
            elapsed += seconds
            name = event.step_key.split("__")[-1] + (f" [{partition}]" if partition else "")
            lines.append(f"  [{elapsed:7.1f}s] {name}: {_outcome(metas.get(event.step_key, []))} ({seconds:.1f}s)")
    return lines, [m for step in metas.values() for m in step]


def run_task(
    task_name: str,
    overrides: list[str],
    select: list[str],
    resources: dict | None = None,
    profile: str | None = None,
    rebuild: list[str] = (),
    verbose: bool = False,
) -> int:
    task = load_config(task_config_path(task_name), overrides, profile=profile)
    steps = run_plan(task, incoming=bool(select))  # incoming days are scored only when selected
    every_asset = [a for s in steps for a in s.assets]
    chosen = resolve_selection(task_name, steps, select)
    if any(k in chosen for s in steps if s.only == () for k in s.keys):
        raise UserError(
            f"--select: {task_name} has no incoming day to score: drop <YYYY-MM-DD>/*.jsonl files into "
            f"{incoming_folder(task)}"
        )
    forced = rebuild_closure(task_name, steps, list(rebuild))
    resources = resources or build_resources()
    root = resources["artifacts"].root
    if not is_remote(root):  # an object store's own errors name its bucket
        writable_folder(root, "the artifact store (RLHF_ARTIFACTS)")
    inst = instance()
    lacking = missing_upstream(steps, chosen, resources["io_manager"])
    if forced:  # the store, and the launcher's through it, build these again
        resources = {**resources, **build_resources(resources["artifacts"].root, forced, resources["launcher"].kind)}
    todo = [
        (step, [k for k in step.keys if k in chosen or p in lacking.get(k, ())], p)
        for step in steps
        for p in step.partitions
    ]
    todo = [t for t in todo if t[1]]
    start, where, invocation = time.time(), "before the first step", uuid.uuid4().hex
    with noted_interrupts() as interrupted:
        try:
            print(
                f"rlhf run {task_name}: {len(todo)} steps; artifacts in {resources['artifacts'].root}"
                + (f"; with what this configuration lacks upstream: {_names(lacking)}" if lacking else "")
                + (f"; rebuilding {_names(forced)}" if forced else ""),
                flush=True,
            )
            for number, (step, keys, partition) in enumerate(todo, 1):
                label = _label(task_name, step, keys, partition)
                where = f"during {label} (step {number} of {len(todo)})"
                print(f"starting {label} (step {number} of {len(todo)})", flush=True)  # a long step is not silent
                t0 = time.time()
                try:
                    result = _execute(
                        step.job,
                        every_asset,
                        keys,
                        partition,
                        inst,
                        resources,
                        verbose,
                        {"rlhf/task": task_name, "rlhf/invocation": invocation},
                    )
                except Exception:
                    print(f"[{time.time() - start:7.1f}s] FAILED {label} ({time.time() - t0:.1f}s)", flush=True)
                    raise
                if not result.success:
                    print(f"[{time.time() - start:7.1f}s] FAILED {label} ({time.time() - t0:.1f}s)", flush=True)
                    return 1
                where = f"after {label} (step {number} of {len(todo)})"
                lines, metas = _step_lines(result, t0 - start, partition)
                if len(lines) > 1:  # a step of several assets: each asset's line, then the step's own
                    print("\n".join(lines), flush=True)
                print(f"[{time.time() - start:7.1f}s] {label}: {_outcome(metas)} ({time.time() - t0:.1f}s)", flush=True)
                if interrupted():  # an interrupt that vanished on its way: it stops the run here
                    raise KeyboardInterrupt
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            # The store holds only whole artifacts (the one a step was building is deleted as the
            # interrupt unwinds it; its checkpoints stay): the same command again resumes.
            mark_canceled(inst, invocation)
            raise Interrupted(f"{where}; what finished is in the store: run the same command again to resume") from None
    print(f"done in {time.time() - start:.1f}s", flush=True)
    return 0


def _execute(
    job: str,
    every_asset: list,
    keys: list[dg.AssetKey],
    partition: str | None,
    inst: dg.DagsterInstance,
    resources: dict,
    verbose: bool,
    tags: dict[str, str],
) -> dg.ExecuteInProcessResult:
    """``dg.materialize`` of ``keys``, under the step's own job name (the UI's job of that step) instead
    of ``__ephemeral_asset_job__``, so a command-line run is listed with the step it ran."""
    defs = dg.Definitions(
        assets=every_asset,
        resources=resources,
        jobs=[dg.define_asset_job(job, selection=dg.AssetSelection.assets(*keys))],
    )
    return defs.resolve_job_def(job).execute_in_process(
        run_config=_logs(verbose), instance=inst, partition_key=partition, tags=tags
    )


def mark_canceled(inst: dg.DagsterInstance, invocation: str) -> None:
    """Ctrl-C ends the step's run as a failure (Dagster's in-process run sees an exception); record it
    as what it was, canceled by the user."""
    runs = inst.get_runs(
        dg.RunsFilter(
            tags={"rlhf/invocation": invocation}, statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.STARTED]
        )
    )
    for run in runs:
        inst.report_run_canceled(run, message="interrupted (Ctrl-C) from the command line")


@contextmanager
def noted_interrupts() -> Iterator[Callable[[], bool]]:
    """Ctrl-C raises KeyboardInterrupt, as by default; the callable yielded says whether one came at all.

    An interrupt can vanish before it stops anything: Python drops an exception raised inside a
    garbage-collection callback or ``__del__`` (Dagster's storage has such callbacks), and inside a step
    Dagster's own handler only sets a flag, which it clears when the step ends without looking (a step
    that found its artifact ends in a blink). So every SIGINT is also written to a pipe by the
    interpreter itself (``signal.set_wakeup_fd``, whichever Python handler is installed), and the run
    checks it after each step.
    """
    noted: list[int] = []
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN or threading.current_thread() is not threading.main_thread():
        yield lambda: bool(noted)  # a background job (Ctrl-C ignored) or a thread: nothing to watch
        return

    def note(signum: int, frame: Any) -> None:
        noted.append(signum)
        raise KeyboardInterrupt

    read, write = os.pipe()
    for fd in (read, write):
        os.set_blocking(fd, False)

    def interrupted() -> bool:
        # drain the pipe: other handled signals' bytes can stand before a SIGINT's
        while True:
            try:
                chunk = os.read(read, 4096)
            except BlockingIOError:  # nothing more arrived
                break
            noted.extend(b for b in chunk if b == signal.SIGINT)
        return bool(noted)

    previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        os.close(read)
        os.close(write)


def print_leaderboard(task_name: str) -> int:
    path = ArtifactStore(artifact_root()).root / task_name / "leaderboard.csv"  # an object store's: its cache
    if not path.exists():
        raise MissingInputError(f"{path} does not exist: run `rlhf run {task_name}` first")
    from rlhf_core.eval.board import readable

    print(f"Leaderboard ({path}; each metric: mean [95% interval over prompts], ± std over seeds):")
    print(readable(pd.read_csv(path)).to_string(index=False))
    legend = path.with_name(LEGEND)
    if legend.exists():  # a leaderboard built before legends were exported has none
        rows = pd.read_csv(legend)
        rows = rows[~rows["column"].str.endswith(("_lo", "_hi", "_seed_std"))]  # shown inside their metric's cell
        width = rows["column"].str.len().max()
        print("\nColumns:")
        for column, meaning in rows.itertuples(index=False):
            print(
                textwrap.fill(
                    meaning, 110, initial_indent=f"  {column:<{width}}  ", subsequent_indent=" " * (width + 4)
                )
            )
    return 0
