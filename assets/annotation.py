"""Reward annotation: one scorer per component, scored shards and incoming days, the final reward.

    reward_scorers        [scorer]           the component resolved: fitted state, weights hash
    annotated_responses   [scorer x shard]   the task's dataset, scored incrementally
    rewards                                  R = sum_k w_k * T_k(score_k) per row (offline RL's reward)
    annotated_incoming    [date x scorer]    files dropped into the incoming folder that day
    incoming_rewards      [date]             their final reward, as soon as every scorer is done

A scorer's partitions read only its own ``reward_scorers`` partition, so changing one scorer
makes only its annotations stale. Every asset builds each partition its run targets: one key (a
job run, the sensor, the schedule) or a range. A backfill scores all partitions in one run
(``BackfillPolicy.single_run``): a run costs a process start, and finished partitions are in the
store, so re-launching after a failure redoes only what failed.
"""

import dagster as dg

from assets.common import asset_in, data_key, declared, dimension, key, per_partition
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import annotation as stages

BY_SCORER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="scorer")
BY_DATE = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date")
POOL = "reward_scoring"  # cap concurrent scoring runs (GPUs) with a pool limit on the instance


def scorer_partitions(task: TaskConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(task.annotation.scorers))


def shard_partitions(task: TaskConfig) -> dg.MultiPartitionsDefinition:
    shards = dg.StaticPartitionsDefinition([str(i) for i in range(task.annotation.shards)])
    return dg.MultiPartitionsDefinition({"scorer": scorer_partitions(task), "shard": shards})


def day_partitions(task: TaskConfig) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's folder is a partition already, so the sensor can score it as files land.
    return dg.DailyPartitionsDefinition(start_date=task.annotation.incoming.start_date, end_offset=1)


def incoming_partitions(task: TaskConfig) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({"date": day_partitions(task), "scorer": scorer_partitions(task)})


def by_component(parts: dg.MultiPartitionsDefinition, refs: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for partition, ref in sorted(refs.items()):
        out.setdefault(dimension(parts, partition, "scorer"), []).append(ref)
    return out


def build(task: TaskConfig) -> dict[str, dg.AssetsDefinition]:
    """The annotation assets of a task, by name (none when the task has no ``annotation``)."""
    cfg = task.annotation
    if cfg is None:
        return {}
    group = f"{task.task}_annotation"
    data_in = {"data": asset_in(task, data_key(task, cfg.data))} if cfg.data else {}
    tables = stages.scorer_tables(task)  # what the scorers are prepared from (a fitted state, the world's facts)
    model_names = sorted({s.model_asset for s in cfg.scorers.values() if s.model_asset})

    @dg.asset(
        key=key(task, "reward_scorers"),
        group_name=group,
        partitions_def=scorer_partitions(task),
        ins={
            **{f"table_{t}": asset_in(task, data_key(task, d)) for t, d in tables.items()},
            **{m: asset_in(task, m, **_named_partitions(task, m)) for m in model_names},
        },
        **declared(task, stages.reward_scorer),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description="Each reward component resolved into a scorer that loads: fitted state, parameters "
        "and a hash of its weights.",
    )
    def reward_scorers(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, **inputs):
        models = {m: inputs[m] for m in model_names}
        return per_partition(
            context,
            lambda component: stages.reward_scorer(
                task, artifacts.store(), component, {t: inputs[f"table_{t}"] for t in tables}, models
            ),
        )

    assets = {"reward_scorers": reward_scorers}
    if cfg.data:
        shards = shard_partitions(task)

        @dg.asset(
            key=key(task, "annotated_responses"),
            group_name=group,
            partitions_def=shards,
            pool=POOL,
            ins={**data_in, **_scorer_in(task)},
            **declared(task, stages.annotate_shard),
            backfill_policy=dg.BackfillPolicy.single_run(),
            description=f"'{cfg.data}' scored by each component, in {cfg.shards} shard(s); rows already "
            "scored by the same scorer are reused, not scored again.",
        )
        def annotated_responses(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, data, scorer):
            def build(partition: str):
                name = dimension(shards, partition, "scorer")
                return stages.annotate_shard(
                    task, artifacts.store(), name, int(dimension(shards, partition, "shard")), data, scorer[name]
                )

            return per_partition(context, build)

        @dg.asset(
            key=key(task, "rewards"),
            group_name=group,
            ins={**data_in, "annotated": asset_in(task, "annotated_responses")},
            **declared(task, stages.combine_rewards),
            description="R of every row: the weighted sum of its (transformed) component scores; "
            "offline RL trains on it.",
        )
        def rewards(artifacts: ArtifactStoreResource, data, annotated):
            return output(
                *stages.combine_rewards(
                    task,
                    artifacts.store(),
                    "rewards",
                    None,
                    by_component(shards, annotated),
                    stages.annotation_rows(data),
                )
            )

        assets.update(annotated_responses=annotated_responses, rewards=rewards)
    return assets


def _named_partitions(task: TaskConfig, model_asset: str) -> dict:
    # The trained RMs are partitioned by name: the scorers read the ones they name, no other (an RM
    # that no scorer names, such as one still waiting for human labels, is not upstream of them).
    if model_asset != "reward_model":
        return {}
    named = sorted({s.partition for s in task.annotation.scorers.values() if s.model_asset == model_asset})
    return {"partition_mapping": dg.SpecificPartitionsPartitionMapping(named)}


def _scorer_in(task: TaskConfig) -> dict[str, dg.AssetIn]:
    return {"scorer": asset_in(task, "reward_scorers", partition_mapping=BY_SCORER)}


def build_incoming(task: TaskConfig) -> dict[str, dg.AssetsDefinition]:
    """The incoming-data assets (none unless ``annotation.incoming`` is set); they read ``reward_scorers``."""
    if task.annotation is None or task.annotation.incoming is None:
        return {}
    parts = incoming_partitions(task)
    group = f"{task.task}_incoming"

    @dg.asset(
        key=key(task, "annotated_incoming"),
        group_name=group,
        partitions_def=parts,
        pool=POOL,
        ins=_scorer_in(task),
        **declared(task, stages.annotate_incoming),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=f"Responses dropped into {task.annotation.incoming.folder}/<date>/*.jsonl, scored by "
        "each component; the sensor and the daily schedule launch it.",
    )
    def annotated_incoming(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, scorer):
        def build(partition: str):
            name = dimension(parts, partition, "scorer")
            return stages.annotate_incoming(
                task, artifacts.store(), name, dimension(parts, partition, "date"), scorer[name]
            )

        return per_partition(context, build)

    @dg.asset(
        key=key(task, "incoming_rewards"),
        group_name=group,
        partitions_def=day_partitions(task),
        ins={"annotated": asset_in(task, "annotated_incoming", partition_mapping=BY_DATE)},
        **declared(task, stages.combine_rewards),
        automation_condition=dg.AutomationCondition.eager(),
        description="The final reward of a day's incoming rows, once every scorer has scored them.",
    )
    def incoming_rewards(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, annotated):
        def build(date: str):
            day = {p: ref for p, ref in annotated.items() if dimension(parts, p, "date") == date}
            return stages.combine_rewards(
                task,
                artifacts.store(),
                "incoming_rewards",
                date,
                by_component(parts, day),
                stages.incoming_rows(task, date),
            )

        return per_partition(context, build)

    return {"annotated_incoming": annotated_incoming, "incoming_rewards": incoming_rewards}
