"""Asset checks guarding the hand-offs; bodies call validators in rlhf_core.data.validate."""

import dagster as dg

from assets.common import key
from rlhf_core.config import TaskConfig
from rlhf_core.data import validate
from rlhf_core.stages.base import table


def _result(passed_meta, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    passed, meta = passed_meta
    return dg.AssetCheckResult(passed=passed, metadata=meta, severity=severity)


def build(task: TaskConfig) -> list[dg.AssetChecksDefinition]:
    checks = []
    for name in task.datasets:

        @dg.asset_check(asset=key(task, name), name="non_empty", blocking=True,
                        description="The table has rows; every input row was kept, dropped by rule or quarantined.")
        def non_empty(ref) -> dg.AssetCheckResult:
            return _result(validate.non_empty_table(table(ref), ref.path))

        checks.append(non_empty)
    pairs = task.reward_model.data if task.reward_model else None
    if pairs in task.datasets:

        @dg.asset_check(asset=key(task, pairs), name="pairs_valid", blocking=True,
                        description="No empty responses; chosen differs from rejected.")
        def pairs_valid(ref) -> dg.AssetCheckResult:
            return _result(validate.preference_pairs_valid(table(ref)))

        checks.append(pairs_valid)
    if task.reward_model is not None and task.gold is not None:

        @dg.asset_check(asset=key(task, "reward_model"), name="heldout_accuracy_vs_gold",
                        description="Held-out pairwise accuracy against the gold reward reaches the configured bar.")
        def rm_accuracy(ref) -> dg.AssetCheckResult:
            acc = ref.meta()["metadata"]["heldout_accuracy_vs_gold"]
            return _result(validate.at_least(acc, task.reward_model.min_pairwise_accuracy, "accuracy"),
                           dg.AssetCheckSeverity.WARN)

        checks.append(rm_accuracy)
    return checks
