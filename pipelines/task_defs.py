"""Asset factory: one task config in, that task's asset graph (under its key prefix) out.

A Dagster run covers one partition key of one partitions definition, so a task's graph is run
in steps (``run_plan``): unpartitioned data and models, the reward models (per RM), their
board, the reward scorers, annotation per
scorer x shard, the combined rewards, the reference value, RL per algorithm, then the
leaderboard over every algorithm.
Each step is also a job in the UI; incoming annotation has its own job, schedule and sensor, and runs
from the command line only when selected (``incoming_steps``: the days present in its folder).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import dagster as dg

from assets import annotation, data, feedback, judge, models, reward_models, rl
from pipelines import automation
from resources.io_manager import with_config_keys
from rlhf_core.config import TaskConfig
from rlhf_core.rewards.incoming import day_folders
from rlhf_core.stages.annotation import incoming_folder


@dataclass(frozen=True)
class Step:
    job: str
    assets: list[dg.AssetsDefinition]
    only: tuple[str, ...] | None = None  # the partition keys to run (incoming: the days present); None: all

    @property
    def keys(self) -> list[dg.AssetKey]:
        return [k for a in self.assets for k in a.keys]

    @property
    def partitions(self) -> list[str | None]:
        parts = self.assets[0].partitions_def
        if self.only is not None:
            return list(self.only)
        return [None] if parts is None else list(parts.get_partition_keys())


def run_plan(task: TaskConfig, incoming: bool = False) -> list[Step]:
    """The steps of a whole-task run; ``incoming``: then the incoming days' scoring (``incoming_steps``)."""
    rl_assets = rl.build(task)
    notes = annotation.build(task)
    steps = [
        Step(
            f"{task.task}_data_and_models",
            feedback.build_tables(task) + data.build(task) + models.build(task) + reward_models.build_probe(task),
        ),
        Step(f"{task.task}_reward_models", reward_models.build(task)),
        Step(f"{task.task}_reward_model_board", reward_models.build_board(task)),
        Step(f"{task.task}_scorers", [notes["reward_scorers"]] if notes else []),
        Step(f"{task.task}_annotation", [notes["annotated_responses"]] if "annotated_responses" in notes else []),
        Step(f"{task.task}_rewards", [notes["rewards"]] if "rewards" in notes else []),
        Step(f"{task.task}_reference_value", rl.build_reference_value(task)),
        Step(f"{task.task}_rl", rl_assets[:-1]),
        Step(f"{task.task}_leaderboard", rl_assets[-1:] + judge.build(task)),
    ]
    steps = [s for s in steps if s.assets] + (incoming_steps(task) if incoming else [])
    keyed = iter(with_config_keys([a for s in steps for a in s.assets]))  # in the steps' order
    return [dataclasses.replace(s, assets=[next(keyed) for _ in s.assets]) for s in steps]


def incoming_steps(task: TaskConfig) -> list[Step]:
    """Scoring of the incoming folder's days, for ``rlhf run --select incoming`` (never part of a
    plain run): each scorer on each day folder present, then each day's reward."""
    incoming = annotation.build_incoming(task)
    if not incoming:
        return []
    days = list(day_folders(incoming_folder(task)))
    pairs = [dg.MultiPartitionKey({"date": d, "scorer": s}) for d in days for s in task.annotation.scorers]
    return [
        Step(f"{task.task}_incoming", [incoming["annotated_incoming"]], tuple(pairs)),
        Step(f"{task.task}_incoming_rewards", [incoming["incoming_rewards"]], tuple(days)),
    ]


def build_task_definitions(task: TaskConfig) -> dg.Definitions:
    plan = run_plan(task)
    # Each job's partitions are inferred from its assets (one partitions definition per step).
    jobs = [dg.define_asset_job(s.job, selection=dg.AssetSelection.assets(*s.keys)) for s in plan]
    assets = [a for s in plan for a in s.assets]
    schedules, sensors = [], []
    incoming = annotation.build_incoming(task)
    if incoming:
        assets += with_config_keys([*assets, incoming["annotated_incoming"], incoming["incoming_rewards"]])[-2:]
        job = dg.define_asset_job(
            f"{task.task}_incoming", selection=dg.AssetSelection.assets(incoming["annotated_incoming"])
        )
        jobs.append(job)
        schedules.append(automation.daily_schedule(task, job))
        sensors.append(automation.incoming_sensor(task, job, annotation.day_partitions(task)))
    push, label_jobs, label_sensors = feedback.build_definitions(task)
    push = with_config_keys([*assets, *push])[len(assets) :]
    return dg.Definitions(
        assets=assets + push, jobs=jobs + label_jobs, schedules=schedules, sensors=sensors + label_sensors
    )
