"""Trials: the policy partitions of a task once it declares training seeds or a sweep.

A trial is one algorithm trained with one setting of its sweep grid and one training seed, and
evaluated on one split. Its partition key names what differs from the task's own config:

    dpo                               the task's settings (policy.overrides.dpo applied), its own seeds
    dpo@seed=2                        training seed 2 (``seeds: [1, 2, 3]``)
    dpo@lr=5e-05@seed=2               a point of ``policy.sweep.dpo.lr`` with seed 2, reported on test
    dpo@lr=5e-05@seed=2@split=val     the same policy, sampled and scored on the validation split

The trial's stages run on the task config with those values set (``variant``), so each artifact is
keyed by what it really used: a sweep point equal to the committed setting, or the test and val
trials of one policy, share their policy artifact. ``lr`` means the learning rate of the algorithm's
own trainer (``policy.train.lr``, ``policy.ppo.lr`` or ``policy.fg_ppo.ppo.lr``); any other sweep key
is a path under ``policy``. A seed sets every trainer's seed and the evaluation's sampling seed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import yaml

from rlhf_core.config import TaskConfig, to_dict
from rlhf_core.config.parse import NUMBER, ConfigError, apply_override, parse_section

BASELINE = "sft"  # the policy partition that is the SFT reference itself
SEP = "@"
VALIDATION = "val"


@dataclass(frozen=True)
class Trial:
    algorithm: str
    settings: dict[str, Any] = field(default_factory=dict)  # sweep key -> value
    seed: int | None = None
    split: str | None = None  # None: the task's evaluation.split

    @property
    def key(self) -> str:
        parts = [f"{k}={_text(v)}" for k, v in sorted(self.settings.items())]
        parts += [f"seed={self.seed}"] if self.seed is not None else []
        parts += [f"split={self.split}"] if self.split is not None else []
        return SEP.join([self.algorithm, *parts])

    @property
    def setting(self) -> str:
        """The sweep point as text ('' for the task's own settings)."""
        return " ".join(f"{k}={_text(v)}" for k, v in sorted(self.settings.items()))


def _value(value: Any) -> Any:
    """A number written as YAML 1.1 reads it (``5e-5`` is a string there) becomes a float."""
    return float(value) if isinstance(value, str) and NUMBER.fullmatch(value.strip()) else value


def _text(value: Any) -> str:
    value = _value(value)
    return f"{value:g}" if isinstance(value, float) else yaml.safe_dump(value, default_flow_style=True).split("\n")[0]


def parse(key: str) -> Trial:
    algorithm, *parts = key.split(SEP)
    values = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"partition {key!r}: {part!r} is not name=value")
        values[name] = _value(yaml.safe_load(value))
    seed, split = values.pop("seed", None), values.pop("split", None)
    return Trial(algorithm, values, seed, split)


def trials(task: TaskConfig) -> list[Trial]:
    """Every trial the task declares: the baseline, then per algorithm its grid x seeds on test,
    and on val too where a grid has more than one point (the val trials pick the point)."""
    policy = task.policy
    seeds = list(task.seeds) or [None]
    out = [Trial(BASELINE, seed=s) for s in seeds]
    for algorithm in policy.algorithms:
        grid = policy.sweep.get(algorithm, {})
        points = [{k: _value(v) for k, v in zip(grid, values)} for values in itertools.product(*grid.values())]
        points = points or [{}]
        splits = [None, VALIDATION] if len(points) > 1 else [None]
        out += [Trial(algorithm, p, s, split) for split in splits for p in points for s in seeds]
    return out


def partition_keys(task: TaskConfig) -> list[str]:
    return [t.key for t in trials(task)]


def sweep_path(task: TaskConfig, algorithm: str, name: str) -> str:
    """The config path a sweep or override key sets for an algorithm."""
    if name != "lr":
        return f"policy.{name}"
    if algorithm == "fg_ppo":
        return "policy.fg_ppo.ppo.lr"
    return "policy.ppo.lr" if algorithm in ("ppo", "grpo") else "policy.train.lr"


def seed_paths(task: TaskConfig) -> list[str]:
    paths = ["seed", "policy.train.seed"]
    paths += ["policy.ppo.seed"] if task.policy.ppo is not None else []
    return paths + (["policy.fg_ppo.ppo.seed"] if task.policy.fg_ppo is not None else [])


def variant(task: TaskConfig, trial: Trial) -> TaskConfig:
    """The task config a trial's stages run on (the task itself for a trial that changes nothing)."""
    values = {
        sweep_path(task, trial.algorithm, k): v
        for k, v in {**task.policy.overrides.get(trial.algorithm, {}), **trial.settings}.items()
    }
    if trial.seed is not None:
        values.update({p: trial.seed for p in seed_paths(task)})
    if trial.split is not None:
        values["evaluation.split"] = trial.split
        # a task that already samples val as an extra split ([LoL]) samples it as the main one here
        values["evaluation.extra_splits"] = [s for s in task.evaluation.extra_splits if s != trial.split]
    if not values:
        return task
    raw = to_dict(task)
    for path, value in values.items():
        apply_override(raw, f"{path}={yaml.safe_dump(value, default_flow_style=True).strip()}", task.task)
    try:
        return parse_section(TaskConfig, raw)
    except ConfigError as err:
        raise ConfigError(f"{task.task}: trial {trial.key}: {err}") from None


def resolve(task: TaskConfig, key: str) -> tuple[TaskConfig, str]:
    """A partition key -> (the config its stages run on, the algorithm)."""
    trial = parse(key)
    return variant(task, trial), trial.algorithm
