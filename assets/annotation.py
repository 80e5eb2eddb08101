"""Reward annotation of the task's responses, partitioned by scorer."""
import dagster as dg

from assets.common import asset_in, code_version, key
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core import stages
from rlhf_core.config import TaskConfig


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    cfg = task.annotation
    if cfg is None:
        return []
    data_key = f"raw_{cfg.data}" if cfg.data in task.sources else cfg.data
    ins = {"data": asset_in(task, data_key)}
    if task.gold is not None:
        ins["world"] = asset_in(task, f"raw_{task.gold.source}")

    @dg.asset(key=key(task, "annotated_responses"), group_name=f"{task.task}_annotation",
              partitions_def=dg.StaticPartitionsDefinition(cfg.scorers), ins=ins,
              code_version=code_version(task, cfg, task.gold),
              backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
              description=f"'{cfg.data}' scored by each scorer: {cfg.scorers}.")
    def annotated_responses(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, data, world=None):
        return output(*stages.annotate(task, artifacts.store(), context.partition_key, data, world))

    return [annotated_responses]
