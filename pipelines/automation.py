"""What launches incoming annotation without a person: a daily schedule and a folder sensor.

Both request one run per (date, scorer) partition of ``annotated_incoming``; ``incoming_rewards``
follows on its own (eager automation) once every scorer of that day is done. Both start
stopped: turn them on in the UI (Automation tab) with ``dagster-daemon`` running.
"""

from __future__ import annotations

import datetime
import json

import dagster as dg

from rlhf_core.config import TaskConfig
from rlhf_core.rewards.incoming import day_folders, fingerprint
from rlhf_core.stages.annotation import incoming_folder


def _requests(task: TaskConfig, date: str, run_key: str | None) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(
            run_key=run_key and f"{run_key}/{scorer}",
            partition_key=dg.MultiPartitionKey({"date": date, "scorer": scorer}),
            tags={"rlhf/task": task.task},
        )
        for scorer in task.annotation.scorers
    ]


def daily_schedule(task: TaskConfig, job) -> dg.ScheduleDefinition:
    hour = task.annotation.incoming.schedule_hour

    @dg.schedule(
        name=f"{task.task}_incoming_daily",
        job=job,
        cron_schedule=f"0 {hour} * * *",
        execution_timezone="UTC",
        description="Scores the previous day's incoming folder with every scorer (already-scored rows are reused).",
    )
    def schedule(context: dg.ScheduleEvaluationContext):
        day = (context.scheduled_execution_time - datetime.timedelta(days=1)).date().isoformat()
        if day < task.annotation.incoming.start_date:
            return dg.SkipReason(f"{day} is before the first partition {task.annotation.incoming.start_date}")
        return _requests(task, day, run_key=f"scheduled/{day}")

    return schedule


def incoming_sensor(task: TaskConfig, job, partitions: dg.DailyPartitionsDefinition) -> dg.SensorDefinition:
    folder = incoming_folder(task)

    @dg.sensor(
        name=f"{task.task}_incoming_files",
        job=job,
        minimum_interval_seconds=60,
        description=f"Scores a day folder of {folder} when its files change (added or rewritten).",
    )
    def sensor(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else {}
        valid = set(partitions.get_partition_keys())
        requests = []
        for date, day in day_folders(folder).items():
            mark = fingerprint(day)
            if seen.get(date) == mark:
                continue
            if date not in valid:
                context.log.warning(
                    f"{day}: {date} is not a partition (first is {task.annotation.incoming.start_date})"
                )
                continue
            requests += _requests(task, date, run_key=f"{date}/{mark}")
            seen[date] = mark
        if not requests:
            return dg.SkipReason(f"no new or changed files under {folder}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

    return sensor
