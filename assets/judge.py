"""The judge's win rates: each policy's samples against the baseline's, asked in both orders."""

import dagster as dg

from assets.common import asset_in, data_key, key
from resources.artifacts import ArtifactStoreResource
from resources.judge import JudgeResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import rl
from rlhf_core.stages.judge import judge_win_rates as judge_stage


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.policy is None or task.evaluation is None or task.evaluation.judge is None:
        return []
    cfg = task.evaluation.judge

    @dg.asset(
        key=key(task, "judge_win_rates"),
        group_name=f"{task.task}_rl",
        ins={
            "evaluations": asset_in(task, "evaluation"),
            "prompts": asset_in(task, data_key(task, rl.prompts_dataset(task))),
            "scorers": asset_in(task, "reward_scorers", partition_mapping=dg.AllPartitionMapping()),
        },
        code_version=judge_stage.version(task),
        description=f"Win, tie and loss rates against {cfg.against!r} ({cfg.kind} judge"
        f"{': ' + cfg.scorer if cfg.scorer else ', ' + cfg.prompt} prompt), both orders asked.",
    )
    def judge_win_rates(artifacts: ArtifactStoreResource, judge: JudgeResource, evaluations, prompts, scorers):
        return output(*judge_stage(task, artifacts.store(), evaluations, prompts, scorers, judge.endpoint(cfg)))

    return [judge_win_rates]
