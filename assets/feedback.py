"""Human feedback both ways: generations out to the annotation tool, completed labels back as tables.

Per collection of ``feedback.collections``:
- ``<collection>_items`` reads the listed policies' ``generations`` partitions, builds the items and pushes
  them to the collection's Label Studio projects (a push never duplicates an item);
- the sensor ``<task>_<collection>_annotations`` polls the projects, writes what is new as a dated batch
  (``rlhf_core.feedback.batches``) and requests a run of the collection's table;
- ``<collection>`` is the table every batch becomes, in the format the task's loader reads; the task's
  datasets and reward models name it like any table, so lineage runs annotations -> table -> RM files -> RM.
And ``human_rankings``: an exported human ranking study, merged and scored (docs/sources.md §7.4).
"""

from __future__ import annotations

import dagster as dg

from assets.common import asset_in, declared, key
from resources import annotation_tool
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.feedback.batches import batch_dirs
from rlhf_core.stages import feedback as stages


def build_tables(task: TaskConfig) -> list[dg.AssetsDefinition]:
    """The collections' tables and the human ranking study: assets with no parent, read before the data."""
    names = list(task.feedback.collections) if task.feedback else []
    return [_table(task, name) for name in names] + ([_human_rankings(task)] if task.human_rankings else [])


def build_push(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.feedback is None or task.policy is None:
        return []
    return [_items(task, name) for name in task.feedback.collections]


def _items(task: TaskConfig, name: str) -> dg.AssetsDefinition:
    spec = task.feedback.collections[name]
    gens = asset_in(
        task,
        "generations",
        partition_mapping=dg.SpecificPartitionsPartitionMapping(spec.policies),
    )

    @dg.asset(
        key=key(task, f"{name}_items"),
        group_name=f"{task.task}_feedback",
        ins={"generations": gens},
        **declared(task, stages.annotation_items, name),
        kinds={"json"},
        description=f"Items of '{name}' ({spec.interface}: {', '.join(spec.policies)}), pushed to the "
        "annotation tool; a push never duplicates an item.",
    )
    def _asset(artifacts: ArtifactStoreResource, generations):
        ref, meta = stages.annotation_items(task, artifacts.store(), name, generations)
        tool = annotation_tool.connect(task)
        items = stages.read_items(ref)
        for page, project in annotation_tool.project_ids(tool, task, name).items():
            meta.update({f"{page}_{k}": v for k, v in tool.push(project, items).items()})
            meta[f"{page}_project"] = f"{tool.url}/projects/{project}"
        return output(ref, meta)

    return _asset


def _table(task: TaskConfig, name: str) -> dg.AssetsDefinition:
    spec = task.feedback.collections[name]

    @dg.asset(
        key=key(task, name),
        group_name=f"{task.task}_data",
        kinds={"parquet"},
        **declared(task, stages.feedback_table, name),
        description=f"The labels of '{name}' ({spec.interface}) from every batch of "
        f"{task.feedback.folder}/{task.task}/{name}, in the loader's format; bad ones quarantined.",
    )
    def _asset(artifacts: ArtifactStoreResource):
        return output(*stages.feedback_table(task, artifacts.store(), name))

    return _asset


def _human_rankings(task: TaskConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(task, "human_rankings"),
        group_name=f"{task.task}_feedback",
        kinds={"parquet"},
        **declared(task, stages.human_rankings),
        description="A human ranking study: ranked pairs per prompt, Borda points, per-group mean and population std.",
    )
    def _asset(artifacts: ArtifactStoreResource):
        return output(*stages.human_rankings(task, artifacts.store()))

    return _asset


def table_job(task: TaskConfig, name: str) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        f"{task.task}_{name}_labels",
        selection=dg.AssetSelection.assets(key(task, name)),
    )


def annotations_sensor(task: TaskConfig, name: str, job) -> dg.SensorDefinition:
    """Polls the collection's projects and writes what is new as a batch; a batch on disk newer than the
    cursor (this poll's, or one the webhook receiver wrote, ``pipelines.feedback_webhook``) requests a run
    of the collection's table."""
    folder = stages.batch_folder(task, name)

    @dg.sensor(
        name=f"{task.task}_{name}_annotations",
        job=job,
        minimum_interval_seconds=task.feedback.poll_seconds,
        description=f"New completed annotations of '{name}' -> a dated batch under {folder} -> its table.",
    )
    def sensor(context: dg.SensorEvaluationContext):
        batch, counts = annotation_tool.collect(task, name)
        if batch is not None:
            context.log.info(f"{batch.name}: {counts}")
        batches = batch_dirs(folder)
        if not batches or batches[-1].name <= (context.cursor or ""):
            return dg.SkipReason(f"nothing new ({counts['annotations']} annotations, {counts['pending']} pending)")
        latest = batches[-1].name  # the table reads every batch: one run covers all since the cursor
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=latest, tags={"rlhf/task": task.task, "rlhf/batch": latest})],
            cursor=latest,
        )

    return sensor


def build_definitions(
    task: TaskConfig,
) -> tuple[list[dg.AssetsDefinition], list, list[dg.SensorDefinition]]:
    """The push assets, and per collection its table's job and annotation sensor (the tables are in the plan)."""
    if task.feedback is None:
        return [], [], []
    jobs = {name: table_job(task, name) for name in task.feedback.collections}
    return (
        build_push(task),
        list(jobs.values()),
        [annotations_sensor(task, n, j) for n, j in jobs.items()],
    )
