"""Reward-model stages: every RM the task declares (one partition per name), trained on the Engine.

    reward_model(task, store, "bt", tok, sft, {"preference_pairs": ref}, world)

Each RM is saved as a Hugging Face model (``save_pretrained``) with its tokenizer and a
``reward_model.json`` that says its kind and settings, so the ``reward_model`` scorer
(``rlhf_core.rewards.trained_rm``) opens any of them by directory. How each kind trains is its
entry in ``stages.rm_kinds``; judging them is ``stages.rm_eval``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlhf_core.config import RewardModelSpec, TaskConfig
from rlhf_core.stages.base import Context, Result, stage
from rlhf_core.stages.rm_kinds import RM_KINDS, RMRun, split_rows
from rlhf_core.store import ArtifactRef


def rm_datasets(spec: RewardModelSpec) -> list[str]:
    """The tables an RM trains on: its data and, for ArmoRM, its preference pairs."""
    return [spec.data, *([spec.pairs] if spec.pairs else [])]


def needs_gold(task: TaskConfig, name: str) -> bool:
    """An ArmoRM whose objectives are not columns of its data takes them from the gold judge (the demo)."""
    return task.reward_models[name].kind == "armo" and task.gold is not None


def _reads(task: TaskConfig, name: str) -> list[str]:
    spec = task.reward_models[name]
    return [
        f"reward_models.{name}",
        "seed",
        "compute",
        *(["sft.model.init"] if spec.init == "scratch" else []),
        *(["gold", "world"] if needs_gold(task, name) else []),
        *([f"datasets.{spec.data}", f"datasets.{spec.pairs}"] if spec.precomputed_embeddings else []),
    ]


def rm_names(task: TaskConfig) -> list[str]:
    return list(task.reward_models)


def _kind(task: TaskConfig, name: str):
    return RM_KINDS.get(task.reward_models[name].kind)


# Each partition is keyed on its own kind's trainer alone (``uses``): an edit to the ranking loss's
# trainer re-trains the crs_ranking RMs, not every RM.
@stage(
    _reads,
    each=rm_names,
    uses=lambda task, name: [_kind(task, name).train],
    spreads=lambda task, name: _kind(task, name).spreads,
)
def reward_model(
    ctx: Context,
    name: str,
    tok: ArtifactRef | None,
    sft: ArtifactRef | None,
    data: dict[str, ArtifactRef],
    world: ArtifactRef | None,
) -> Result:
    """Train reward model ``name`` of the task: its kind's loss on its data's ``train_split`` rows,
    from its base network (docs/sources.md §5)."""
    spec = ctx.cfg.reward_models[name]
    entry = RM_KINDS.get(spec.kind)

    def build(out: Path, work: Path) -> dict[str, Any]:
        info: dict[str, Any] = {
            "kind": spec.kind,
            "name": name,
            "max_length": spec.train.max_length,
            "truncation_side": spec.truncation_side,
            "response_template": spec.response_template,
            "chat_template": spec.chat_template,
        }
        rows = split_rows(data[spec.data], spec.train_split)
        return entry.train(RMRun(ctx.cfg, spec, tok, sft, data, world, rows, info, out, work))

    parents = {"tokenizer": tok, "sft": sft, "world": world, **{f"data/{d}": data[d] for d in rm_datasets(spec)}}
    return ctx.build("reward_model", name, parents, build)


def read_spec(ref: ArtifactRef) -> dict[str, Any]:
    return json.loads(ref.file("reward_model.json").read_text())
