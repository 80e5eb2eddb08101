"""How policies are sampled and evaluated (``evaluation``; the generation settings other sections share)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlhf_core.config.judge import JudgeConfig
from rlhf_core.config.parse import ConfigError


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 48
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0  # nucleus sampling ([CRS] 0.9); 1.0: off
    batch_size: int = 64


@dataclass(frozen=True)
class MetricSpec:
    """One evaluation metric: a registered metric (``rlhf_core.eval.measures``) and its parameters."""

    metric: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationConfig:
    """How each policy is evaluated: its samples on ``split`` (and ``extra_splits``), scored by every reward
    component and by ``metrics``; with ``gold``, the prompts' reference completions are scored the same way."""

    split: str = "test"  # the split the leaderboard ranks on
    extra_splits: list[str] = field(default_factory=list)  # also evaluated and reported ([LoL]: val beside test)
    rank_by: str = "reward"  # leaderboard order: "reward" (the task's R) or a reward component's column
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    judge: JudgeConfig | None = None  # pairwise win rates against a baseline (``config.judge``)
    num_beams: int = 1  # [LoL] generation tasks: beam 2, repetition penalty 2.5 (docs/sources.md §7.2)
    repetition_penalty: float = 1.0
    samples_per_prompt: int = 1  # [FG] detox: 25 samples per prompt
    stop_at: list[str] = field(
        default_factory=list
    )  # cut a response at the first of these ([LoL] HHA: the next human turn)
    strip_suffixes: list[str] = field(default_factory=list)  # then strip it and drop one of these from its end
    gold: bool = False  # also score the references (the prompts table's ``completion``) as "gold" rows
    metrics: dict[str, MetricSpec] = field(default_factory=dict)  # reported name -> metric

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 1:
            raise ConfigError(f"samples_per_prompt must be >= 1, got {self.samples_per_prompt}")
        if self.split in self.extra_splits:
            raise ConfigError(f"extra_splits repeats split {self.split!r}")
