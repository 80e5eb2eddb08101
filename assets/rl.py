"""The A-LoL reference value, policies per algorithm, their generations and evaluations, the leaderboard.

R, the task's reward, reaches offline RL through ``rewards`` -> ``reference_value`` -> ``policy``;
V_ref, the online policies (ppo, grpo) and the evaluation score samples with the same ``reward_scorers``.
"""

import dagster as dg

from assets.common import asset_in, data_key, declared, gpu_pool, key, per_partition, stage_asset, stage_ins
from resources.artifacts import ArtifactStoreResource
from resources.launcher import LauncherResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import evaluation, rl, trials


def algorithm_partitions(task: TaskConfig) -> dg.StaticPartitionsDefinition:
    """One partition per algorithm, or per trial (algorithm x sweep point x seed x split: stages/trials.py)."""
    rl.policy_partitions(task)  # every listed algorithm is a registered one
    return dg.StaticPartitionsDefinition(trials.partition_keys(task))


def _scorers_in(task: TaskConfig) -> dg.AssetIn:
    # Every component's scorer (all partitions), as {component: ref}.
    return asset_in(task, "reward_scorers", partition_mapping=dg.AllPartitionMapping())


def has_reference_value(task: TaskConfig) -> bool:
    """A-LoL's V_ref is fitted on SFT samples: a task without an SFT stage has none."""
    return task.reference_value is not None and task.policy is not None and task.sft is not None


def build_reference_value(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if not has_reference_value(task):
        return []

    return [
        stage_asset(
            task,
            rl.reference_value,
            {
                "sft": "sft_model",
                "prompts": data_key(task, task.sft.data),
                "rewards": "rewards",
                "scorers": _scorers_in(task),
            },
            launched=True,
            group_name=f"{task.task}_rl",
            kinds={"pytorch"},
            description="A-LoL value head V_ref(x), fitted to the task's reward of the reference's own "
            "samples, and the advantages A = R - V_ref(x) of the training rows.",
        )
    ]


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.policy is None or task.evaluation is None:
        return []
    group = f"{task.task}_rl"
    parts = algorithm_partitions(task)
    # A backfill trains, samples and scores every algorithm in one run (a run costs a process start
    # and a daemon tick); finished algorithms are in the store, so a re-launch redoes only what failed.
    one_run = dg.BackfillPolicy.single_run()

    # What a policy starts from and learns from, as far as the task has it (no SFT stage: policy.init).
    optional = {
        "sft": "sft_model" if task.sft else None,
        "value": "reference_value" if has_reference_value(task) else None,
        "pairs": data_key(task, task.policy.pairs) if task.policy.pairs else None,
    }
    prompts_in = asset_in(task, data_key(task, rl.prompts_dataset(task)))

    @dg.asset(
        key=key(task, "policy"),
        group_name=group,
        partitions_def=parts,
        kinds={"pytorch"},
        ins=stage_ins(
            task,
            rl.policy,
            **{k: name for k, name in optional.items() if name},
            prompts=prompts_in,
            scorers=_scorers_in(task),
        ),
        **declared(task, rl.policy),
        backfill_policy=one_run,
        pool=gpu_pool(task),
        description="The starting policy fine-tuned by one algorithm; partition 'sft' is the start itself.",
    )
    def policy(context: dg.AssetExecutionContext, launcher: LauncherResource, prompts, scorers, **given):
        refs = {k: given.get(k) for k in optional}

        def train(trial: str):
            variant, algorithm = trials.resolve(task, trial)
            return launcher.run(
                context, variant, rl.policy, algorithm, refs["sft"], refs["value"], refs["pairs"], prompts, scorers
            )

        return per_partition(context, train)

    @dg.asset(
        key=key(task, "generations"),
        group_name=group,
        partitions_def=parts,
        backfill_policy=one_run,
        ins=stage_ins(task, evaluation.generations, policy="policy", prompts=prompts_in),
        **declared(task, evaluation.generations),
        pool=gpu_pool(task),
        description="Samples on the evaluation prompts.",
    )
    def generations(context: dg.AssetExecutionContext, launcher: LauncherResource, policy, prompts):
        def sample(trial: str):
            variant, algorithm = trials.resolve(task, trial)
            return launcher.run(context, variant, evaluation.generations, algorithm, policy[trial], prompts)

        return per_partition(context, sample)

    @dg.asset(
        key=key(task, "evaluation"),
        group_name=group,
        partitions_def=parts,
        backfill_policy=one_run,
        ins=stage_ins(task, evaluation.evaluation, gen="generations", scorers=_scorers_in(task)),
        **declared(task, evaluation.evaluation),
        description="Every reward component (gold breakdown included), the task's reward R, distinct-1/2.",
    )
    def evaluation_(context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, gen, scorers):
        def score(trial: str):
            variant, algorithm = trials.resolve(task, trial)
            return evaluation.evaluation(variant, artifacts.store(), algorithm, gen[trial], scorers)

        return per_partition(context, score)

    @dg.asset(
        key=key(task, "leaderboard"),
        group_name=group,
        # generations: each policy's validation history travels with its samples (no weights fetched)
        ins={"evaluations": asset_in(task, "evaluation"), "generations": asset_in(task, "generations")},
        **declared(task, evaluation.leaderboard),
        kinds={"csv"},
        description=f"One row per algorithm; exported to data/artifacts/{task.task}/leaderboard.csv.",
    )
    def leaderboard(artifacts: ArtifactStoreResource, evaluations, generations):
        store = artifacts.store()
        export = store.root / task.task / "leaderboard.csv"
        return output(*evaluation.leaderboard(task, store, evaluations, generations, export))

    return [policy, generations, evaluation_, leaderboard]
