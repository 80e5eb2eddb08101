"""Policies per algorithm, their generations and evaluations, and the leaderboard."""
import dagster as dg

from assets.common import asset_in, code_version, key, per_partition
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core import stages
from rlhf_core.config import TaskConfig


def algorithm_partitions(task: TaskConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(stages.policy_partitions(task))


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.policy is None or task.evaluation is None:
        return []
    group = f"{task.task}_rl"
    parts = algorithm_partitions(task)
    world = task.gold.source if task.gold else None
    pairs_key = f"raw_{task.policy.pairs}" if task.policy.pairs in task.sources else task.policy.pairs
    prompts_key = f"raw_{task.sft.data}" if task.sft.data in task.sources else task.sft.data

    @dg.asset(key=key(task, "policy"), group_name=group, partitions_def=parts, kinds={"pytorch"},
              ins={"sft": asset_in(task, "sft_model"), "value": asset_in(task, "reference_value"),
                   "pairs": asset_in(task, pairs_key)},
              code_version=code_version(task, task.policy),
              description="The SFT reference fine-tuned by one algorithm; partition 'sft' is the reference itself.")
    def policy(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, sft, value, pairs):
        return per_partition(context, lambda algorithm: stages.policy(task, artifacts.store(), algorithm, sft, value,
                                                                      pairs))

    @dg.asset(key=key(task, "generations"), group_name=group, partitions_def=parts,
              ins={"policy": asset_in(task, "policy"), "prompts": asset_in(task, prompts_key)},
              code_version=code_version(task, task.evaluation), description="Samples on the evaluation prompts.")
    def generations(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, policy, prompts):
        return per_partition(context, lambda algorithm: stages.generations(task, artifacts.store(), algorithm,
                                                                           policy[algorithm], prompts))

    eval_ins = {"gen": asset_in(task, "generations"), "rm": asset_in(task, "reward_model")}
    if world:
        eval_ins["world"] = asset_in(task, f"raw_{world}")

    @dg.asset(key=key(task, "evaluation"), group_name=group, partitions_def=parts, ins=eval_ins,
              code_version=code_version(task, task.gold),
              description="Gold reward and components, RM reward, length, distinct-1/2.")
    def evaluation(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, gen, rm, world=None):
        return per_partition(context, lambda algorithm: stages.evaluation(task, artifacts.store(), algorithm,
                                                                          gen[algorithm], rm, world))

    @dg.asset(key=key(task, "leaderboard"), group_name=group, ins={"evaluations": asset_in(task, "evaluation")},
              code_version=code_version(task), kinds={"csv"},
              description=f"One row per algorithm; exported to data/artifacts/{task.task}/leaderboard.csv.")
    def leaderboard(artifacts: ArtifactStoreResource, evaluations):
        store = artifacts.store()
        return output(*stages.leaderboard(task, store, evaluations, store.root / task.task / "leaderboard.csv"))

    return [policy, generations, evaluation, leaderboard]
