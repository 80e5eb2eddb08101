"""The reward components (``annotation.scorers``) and the data they score, batch and incoming."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

from rlhf_core.config.parse import ConfigError


@dataclass(frozen=True)
class ScorerSpec:
    """One reward component: a registered scorer, how to build it, and its weight in the reward."""

    scorer: str  # registered scorer name (rlhf_core.rewards)
    params: dict[str, Any] = field(default_factory=dict)  # constructor arguments: model, revision, ...
    model_asset: str | None = None  # score with a model this pipeline trains ("reward_model", "sft_model")
    partition: str | None = None  # which reward model (a name under reward_models), with model_asset reward_model
    weight: float = 1.0  # weight in the task's final reward; 0 = reported, not rewarded
    transform: Literal["identity", "sigmoid"] = "identity"  # applied to the score before weighting

    def __post_init__(self) -> None:
        if self.model_asset not in (None, "reward_model", "sft_model"):
            raise ConfigError(f"model_asset must be reward_model or sft_model, got {self.model_asset!r}")
        if self.model_asset and "model" in self.params:
            raise ConfigError("give either model_asset or params.model, not both")
        if (self.model_asset == "reward_model") != (self.partition is not None):
            raise ConfigError("model_asset reward_model needs partition (the reward model's name), and only it")


@dataclass(frozen=True)
class IncomingConfig:
    """New responses dropped as ``<folder>/<YYYY-MM-DD>/*.jsonl`` (prompt, completion[, id]) per line."""

    folder: str  # relative paths are under the project root
    start_date: str  # first daily partition, YYYY-MM-DD
    schedule_hour: int = 1  # the daily schedule scores the previous day's partition at this hour (UTC)

    def __post_init__(self) -> None:
        try:
            datetime.date.fromisoformat(self.start_date)
        except ValueError:
            raise ConfigError(f"start_date must be YYYY-MM-DD, got {self.start_date!r}") from None
        if not 0 <= self.schedule_hour <= 23:
            raise ConfigError(f"schedule_hour must be 0-23, got {self.schedule_hour}")


@dataclass(frozen=True)
class AnnotationConfig:
    scorers: dict[str, ScorerSpec]  # component name -> scorer
    data: str | None = None  # the dataset (prompt/completion rows) to score; None: incoming data only
    shards: int = 1  # rows are split by content hash, so a shard always holds the same rows
    incoming: IncomingConfig | None = None

    def __post_init__(self) -> None:
        if not self.scorers:
            raise ConfigError("scorers: at least one is needed")
        if self.shards < 1:
            raise ConfigError(f"shards must be >= 1, got {self.shards}")
