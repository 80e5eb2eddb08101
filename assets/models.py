"""Tokenizer, SFT model and reward model."""

import dagster as dg

from assets import checks
from assets.common import GPU_POOL, asset_in, data_key, key
from resources.artifacts import ArtifactStoreResource
from resources.launcher import LauncherResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import models as stages


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.sft is None:
        return []
    group = f"{task.task}_models"
    corpora = sorted({task.sft.data, *([task.policy.data] if task.policy else [])})
    world = task.gold.source if task.gold else None

    @dg.asset(key=key(task, "tokenizer"), group_name=group, kinds={"huggingface"},
              ins={c: asset_in(task, data_key(task, c)) for c in corpora},
              code_version=stages.tokenizer.version(task), description="Byte-level BPE trained on the task corpus.")
    def tokenizer(artifacts: ArtifactStoreResource, **corpus):
        return output(*stages.tokenizer(task, artifacts.store(), corpus))

    @dg.asset(key=key(task, "sft_model"), group_name=group, kinds={"pytorch"},
              ins={"tok": asset_in(task, "tokenizer"), "data": asset_in(task, data_key(task, task.sft.data))},
              code_version=stages.sft_model.version(task), pool=GPU_POOL,
              description="Supervised fine-tuning (NLL) on demonstrations.")
    def sft_model(context: dg.AssetExecutionContext, launcher: LauncherResource, tok, data):
        return output(*launcher.run(context, task, "sft_model", tok, data))

    assets = [tokenizer, sft_model]
    if task.reward_model is not None:
        rm_ins = {"tok": asset_in(task, "tokenizer"), "pairs": asset_in(task, data_key(task, task.reward_model.data)),
                  "sft": asset_in(task, "sft_model")}
        if world:
            rm_ins["world"] = asset_in(task, f"raw_{world}")

        @dg.asset(key=key(task, "reward_model"), group_name=group, kinds={"pytorch"}, ins=rm_ins,
                  code_version=stages.reward_model.version(task), check_specs=checks.specs(task, "reward_model"),
                  pool=GPU_POOL, description="Bradley-Terry reward model; held-out pairwise accuracy against gold in metadata.")
        def reward_model(context: dg.AssetExecutionContext, launcher: LauncherResource, tok, pairs, sft, world=None):
            yield from checks.checked_output(task, "reward_model",
                                             launcher.run(context, task, "reward_model", tok, pairs, sft, world))

        assets.append(reward_model)
    return assets
