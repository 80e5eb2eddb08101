"""Typed, frozen, strict task configs loaded from ``configs/tasks/<task>.yaml``.

    cfg = load_config("configs/tasks/demo.yaml", overrides=["sft.train.epochs=2"])

Unknown keys, missing required keys and wrongly typed values fail with the key's path
(``demo.yaml: sft.train.epochs: expected a number, got 'two'``). Every stage section is optional:
a task that lacks one simply does not build that stage.

This package's public names are listed here; each lives in the module named for what it holds:
``loading`` (reading a task file: profiles, overrides), ``parse`` (the strict reader), ``task``
(``TaskConfig`` and its cross-section checks), ``models`` (model sources), ``data``, ``world``
(the demo world and its gold reward), ``annotation``, ``train`` (trainer, compute and SFT settings),
``rm``, ``rl``, ``evaluation``, ``judge``, ``feedback`` and ``launch``. A stage's key hashes the
values of what it reads of the config, and the code of the definitions it reaches here (a class it
builds, the parser), module by module as for any other code (``rlhf_core.codehash``).
"""

from __future__ import annotations

from rlhf_core.config.annotation import AnnotationConfig, IncomingConfig, ScorerSpec
from rlhf_core.config.data import DatasetConfig, SourceConfig, TokenizerConfig
from rlhf_core.config.evaluation import EvaluationConfig, GenerationConfig, MetricSpec
from rlhf_core.config.feedback import FeedbackCollectionConfig, FeedbackConfig, HumanRankingsConfig
from rlhf_core.config.judge import JudgeConfig
from rlhf_core.config.launch import LauncherConfig
from rlhf_core.config.loading import header_command, load_config, task_config_path, warn_if_unpinned
from rlhf_core.config.models import ModelSource, TinyGPTConfig
from rlhf_core.config.parse import ConfigError, apply_override, parse_section, to_dict
from rlhf_core.config.rl import PolicyConfig, PPOConfig, PROConfig, ReferenceValueConfig
from rlhf_core.config.rm import (
    FG_LABEL_TYPES,
    SEQUENCE_RM_KINDS,
    RewardBenchConfig,
    RewardModelEvalConfig,
    RewardModelSpec,
)
from rlhf_core.config.task import LOADERS, METRICS, SCORERS, TaskConfig
from rlhf_core.config.train import ComputeConfig, LoraConfig, SFTConfig, TrainConfig
from rlhf_core.config.world import DemoWorldConfig, FaultRates, GoldConfig

# Where relative paths resolve (the working directory, or RLHF_PROJECT_ROOT).
from rlhf_core.paths import accelerate_dir, profiles_dir, project_root, tasks_dir

__all__ = [
    "FG_LABEL_TYPES",
    "LOADERS",
    "METRICS",
    "SCORERS",
    "SEQUENCE_RM_KINDS",
    "AnnotationConfig",
    "ComputeConfig",
    "ConfigError",
    "DatasetConfig",
    "DemoWorldConfig",
    "EvaluationConfig",
    "FaultRates",
    "FeedbackCollectionConfig",
    "FeedbackConfig",
    "GenerationConfig",
    "GoldConfig",
    "HumanRankingsConfig",
    "IncomingConfig",
    "JudgeConfig",
    "LauncherConfig",
    "LoraConfig",
    "MetricSpec",
    "ModelSource",
    "PPOConfig",
    "PROConfig",
    "PolicyConfig",
    "ReferenceValueConfig",
    "RewardBenchConfig",
    "RewardModelEvalConfig",
    "RewardModelSpec",
    "SFTConfig",
    "ScorerSpec",
    "SourceConfig",
    "TaskConfig",
    "TinyGPTConfig",
    "TokenizerConfig",
    "TrainConfig",
    "accelerate_dir",
    "apply_override",
    "header_command",
    "load_config",
    "parse_section",
    "profiles_dir",
    "project_root",
    "task_config_path",
    "tasks_dir",
    "to_dict",
    "warn_if_unpinned",
]
