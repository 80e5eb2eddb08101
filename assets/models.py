"""Tokenizer and SFT model (the reward models are in assets/reward_models.py)."""

import dagster as dg

from assets.common import asset_in, data_key, gpu_pool, key
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

    @dg.asset(key=key(task, "tokenizer"), group_name=group, kinds={"huggingface"},
              ins={c: asset_in(task, data_key(task, c)) for c in corpora},
              code_version=stages.tokenizer.version(task), description="Byte-level BPE trained on the task corpus.")
    def tokenizer(artifacts: ArtifactStoreResource, **corpus):
        return output(*stages.tokenizer(task, artifacts.store(), corpus))

    @dg.asset(key=key(task, "sft_model"), group_name=group, kinds={"pytorch"},
              ins={"tok": asset_in(task, "tokenizer"), "data": asset_in(task, data_key(task, task.sft.data))},
              code_version=stages.sft_model.version(task), pool=gpu_pool(task),
              description="Supervised fine-tuning (NLL) on demonstrations.")
    def sft_model(context: dg.AssetExecutionContext, launcher: LauncherResource, tok, data):
        return output(*launcher.run(context, task, "sft_model", tok, data))

    return [tokenizer, sft_model]
