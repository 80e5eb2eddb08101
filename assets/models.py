"""Tokenizer, SFT model, reward model and the A-LoL reference value."""

import dagster as dg

from assets.common import asset_in, code_version, key
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core import stages
from rlhf_core.config import TaskConfig


def _data_key(task: TaskConfig, name: str) -> str:
    return f"raw_{name}" if name in task.sources else name


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    if task.sft is None:
        return []
    group = f"{task.task}_models"
    corpora = sorted({task.sft.data, *([task.policy.data] if task.policy else [])})
    world = task.gold.source if task.gold else None

    @dg.asset(key=key(task, "tokenizer"), group_name=group, kinds={"huggingface"},
              ins={c: asset_in(task, _data_key(task, c)) for c in corpora},
              code_version=code_version(task, task.tokenizer), description="Byte-level BPE trained on the task corpus.")
    def tokenizer(artifacts: ArtifactStoreResource, **corpus):
        return output(*stages.tokenizer(task, artifacts.store(), corpus))

    @dg.asset(key=key(task, "sft_model"), group_name=group, kinds={"pytorch"},
              ins={"tok": asset_in(task, "tokenizer"), "data": asset_in(task, _data_key(task, task.sft.data))},
              code_version=code_version(task, task.sft), description="Supervised fine-tuning (NLL) on demonstrations.")
    def sft_model(artifacts: ArtifactStoreResource, tok, data):
        return output(*stages.sft_model(task, artifacts.store(), tok, data))

    assets = [tokenizer, sft_model]
    if task.reward_model is not None:
        rm_ins = {"tok": asset_in(task, "tokenizer"), "pairs": asset_in(task, _data_key(task, task.reward_model.data)),
                  "sft": asset_in(task, "sft_model")}
        if world:
            rm_ins["world"] = asset_in(task, f"raw_{world}")

        @dg.asset(key=key(task, "reward_model"), group_name=group, kinds={"pytorch"}, ins=rm_ins,
                  code_version=code_version(task, task.reward_model),
                  description="Bradley-Terry reward model; held-out pairwise accuracy against gold in metadata.")
        def reward_model(artifacts: ArtifactStoreResource, tok, pairs, sft, world=None):
            return output(*stages.reward_model(task, artifacts.store(), tok, pairs, sft, world))

        assets.append(reward_model)
    if task.reference_value is not None and task.policy is not None:

        @dg.asset(key=key(task, "reference_value"), group_name=group, kinds={"pytorch"},
                  ins={"sft": asset_in(task, "sft_model"), "rm": asset_in(task, "reward_model"),
                       "prompts": asset_in(task, _data_key(task, task.sft.data)),
                       "data": asset_in(task, _data_key(task, task.policy.data))},
                  code_version=code_version(task, task.reference_value, task.reward_model.train.max_length),
                  description="A-LoL value head V_ref(x) and cached advantages A = R - V_ref(x) (SPEC 6.2).")
        def reference_value(artifacts: ArtifactStoreResource, sft, rm, prompts, data):
            return output(*stages.reference_value(task, artifacts.store(), sft, rm, prompts, data))

        assets.append(reference_value)
    return assets
