"""Tokenizer and SFT model (the reward models are in assets/reward_models.py)."""

import dagster as dg

from assets.common import asset_in, data_key, declared, key, stage_asset
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import models as stages


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.sft is None:
        return []
    group = f"{task.task}_models"
    corpora = sorted({task.sft.data, *([task.policy.data] if task.policy else [])})

    @dg.asset(
        key=key(task, "tokenizer"),
        group_name=group,
        kinds={"huggingface"},
        ins={c: asset_in(task, data_key(task, c)) for c in corpora},
        **declared(task, stages.tokenizer),
        description="Byte-level BPE trained on the task corpus.",
    )
    def tokenizer(artifacts: ArtifactStoreResource, **corpus):
        return output(*stages.tokenizer(task, artifacts.store(), corpus))

    sft_model = stage_asset(
        task,
        stages.sft_model,
        {"tok": "tokenizer", "data": data_key(task, task.sft.data)},
        launched=True,
        group_name=group,
        kinds={"pytorch"},
        description="Supervised fine-tuning (NLL) on demonstrations.",
    )
    return [tokenizer, sft_model]
