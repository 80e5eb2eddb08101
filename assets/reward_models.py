"""The reward-model suite: every RM the task declares (one partition per name), judged, on a board.

reward_model         [rm]  trained on the Engine; a HF model + reward_model.json
gold_probe                 held-out logged responses and fresh SFT samples, graded by gold (demo)
reward_model_eval    [rm]  the kind's held-out metric; Spearman / pair accuracy against gold
reward_models              one row per RM, exported to data/artifacts/<task>/reward_models.csv
reward_bench               [RF] RewardBench section scores of the configured RMs
"""

import dagster as dg

from assets.common import asset_in, data_key, declared, gpu_pool, key, per_partition, stage_asset, stage_ins
from resources.artifacts import ArtifactStoreResource
from resources.launcher import LauncherResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import reward_bench as bench
from rlhf_core.stages import reward_models as stages
from rlhf_core.stages import rm_eval


def rm_partitions(task: TaskConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(task.reward_models))


def _datasets(task: TaskConfig) -> list[str]:
    return sorted({d for spec in task.reward_models.values() for d in stages.rm_datasets(spec)})


def _data_ins(task: TaskConfig) -> dict[str, dg.AssetIn]:
    return {f"data_{d}": asset_in(task, data_key(task, d)) for d in _datasets(task)}


def _probe(task: TaskConfig) -> bool:
    return task.reward_model_eval is not None and task.gold is not None and task.sft is not None


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    """The trained RMs and their evaluations (both partitioned by RM name)."""
    if not task.reward_models:
        return []
    group, parts = f"{task.task}_reward_models", rm_partitions(task)
    one_run = dg.BackfillPolicy.single_run()  # a backfill trains (and judges) every RM in one run
    # The task's own networks (SFT-initialised, scratch, tiny init) read its tokenizer (and SFT model).
    own = any(s.init or (s.model is not None and s.model.init is not None) for s in task.reward_models.values())
    base_ins = {"tok": asset_in(task, "tokenizer"), "sft": asset_in(task, "sft_model")} if own and task.sft else {}
    world_in = {"world": asset_in(task, f"raw_{task.gold.source}")} if task.gold else {}

    # The trained RMs are models (``--select models`` builds them); their evaluation is its own group.
    @dg.asset(
        key=key(task, "reward_model"),
        group_name=f"{task.task}_models",
        partitions_def=parts,
        kinds={"pytorch"},
        ins={**base_ins, **_data_ins(task), **world_in},
        **declared(task, stages.reward_model),
        backfill_policy=one_run,
        pool=gpu_pool(task),
        description="Each declared reward model, trained with its kind's loss; a HF model plus "
        "reward_model.json, usable as the 'reward_model' scorer.",
    )
    def reward_model(context: dg.AssetExecutionContext, launcher: LauncherResource, **inputs):
        def build_one(name: str):
            data = {d: inputs[f"data_{d}"] for d in stages.rm_datasets(task.reward_models[name])}
            world = inputs.get("world") if stages.needs_gold(task, name) else None
            return launcher.run(
                context, task, stages.reward_model, name, inputs.get("tok"), inputs.get("sft"), data, world
            )

        return per_partition(context, build_one)

    probe_in = {"probe": asset_in(task, "gold_probe")} if _probe(task) else {}

    @dg.asset(
        key=key(task, "reward_model_eval"),
        group_name=group,
        partitions_def=parts,
        backfill_policy=one_run,
        ins={"rm": asset_in(task, "reward_model"), **_data_ins(task), **probe_in},
        **declared(task, rm_eval.reward_model_eval),
        description="Held-out metric of each RM's kind and its agreement with the gold judge.",
    )
    def reward_model_eval(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, rm, **inputs):
        return per_partition(
            context,
            lambda name: rm_eval.reward_model_eval(
                task,
                artifacts.store(),
                name,
                rm[name],
                {d: inputs[f"data_{d}"] for d in stages.rm_datasets(task.reward_models[name])},
                inputs.get("probe"),
            ),
        )

    return [reward_model, reward_model_eval]


def build_probe(task: TaskConfig) -> list[dg.AssetsDefinition]:
    """The gold probe (tasks with a gold judge and a ``reward_model_eval`` section)."""
    if not task.reward_models or not _probe(task):
        return []
    cfg = task.reward_model_eval

    return [
        stage_asset(
            task,
            rm_eval.gold_probe,
            {"responses": data_key(task, cfg.responses), "sft": "sft_model", "world": f"raw_{task.gold.source}"},
            group_name=f"{task.task}_reward_models",
            description="Held-out logged responses and fresh SFT samples, graded by the gold judge.",
        )
    ]


def build_board(task: TaskConfig) -> list[dg.AssetsDefinition]:
    """The board over every RM, and RewardBench when the task configures it."""
    if not task.reward_models:
        return []

    @dg.asset(
        key=key(task, "reward_models"),
        group_name=f"{task.task}_reward_models",
        kinds={"csv"},
        ins={"evaluations": asset_in(task, "reward_model_eval")},
        **declared(task, rm_eval.reward_model_board),
        description=f"One row per reward model; exported to data/artifacts/{task.task}/reward_models.csv.",
    )
    def reward_models(artifacts: ArtifactStoreResource, evaluations):
        store = artifacts.store()
        return output(
            *rm_eval.reward_model_board(task, store, evaluations, store.root / task.task / "reward_models.csv")
        )

    if task.reward_bench is None:
        return [reward_models]

    embeddings = task.reward_bench.embeddings
    embeddings_in = {"embeddings": data_key(task, embeddings)} if embeddings else {}

    @dg.asset(
        key=key(task, "reward_bench"),
        group_name=f"{task.task}_reward_models",
        ins=stage_ins(
            task, bench.reward_bench, rm="reward_model", data=data_key(task, task.reward_bench.data), **embeddings_in
        ),
        **declared(task, bench.reward_bench),
        description="RewardBench section and overall scores of the configured reward models.",
    )
    def reward_bench(artifacts: ArtifactStoreResource, rm, data, **inputs):
        return output(*bench.reward_bench(task, artifacts.store(), rm, data, inputs.get("embeddings")))

    return [reward_models, reward_bench]
