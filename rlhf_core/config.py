"""Typed, frozen, strict task configs loaded from ``configs/tasks/<task>.yaml``.

    cfg = load_config("configs/tasks/demo.yaml", overrides=["sft.train.epochs=2"])

Unknown keys, missing required keys and wrongly typed values fail with the key's
path (``demo.yaml: sft.train.epochs: expected a number, got 'two'``). Every stage section is
optional: a task that lacks one simply does not build that stage.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

# Model sources, trainer settings, launch and the online-RL sections live in their own modules (no cycle).
from rlhf_core.config_feedback import FeedbackConfig, HumanRankingsConfig
from rlhf_core.config_judge import JudgeConfig
from rlhf_core.config_launch import LauncherConfig
from rlhf_core.config_models import ModelSource, TinyGPTConfig

# The strict reader lives beside this module; its public names are part of this one's.
from rlhf_core.config_parse import ConfigError, apply_override, parse_section, to_dict
from rlhf_core.config_rl import PolicyConfig
from rlhf_core.config_rm import (
    FG_LABEL_TYPES,
    SEQUENCE_RM_KINDS,
    RewardBenchConfig,  # noqa: F401 (re-exported)
    RewardModelEvalConfig,
    RewardModelSpec,
)
from rlhf_core.config_train import LoraConfig, TrainConfig
from rlhf_core.registry import declared_names

# The packages whose modules register loaders and builders, and scorers (read, not imported, here).
LOADERS, SCORERS, METRICS = "rlhf_core.data.loaders", "rlhf_core.rewards", "rlhf_core.eval.measures"
# Where relative paths resolve (the working directory, or RLHF_PROJECT_ROOT).
from rlhf_core.paths import accelerate_dir, profiles_dir, project_root, tasks_dir  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class TokenizerConfig:
    """A byte-level BPE trained on the task corpus, or a hub/local tokenizer."""

    vocab_size: int = 1000
    min_frequency: int = 2
    source: ModelSource | None = None  # None: train on the task corpus


# ----------------------------------------------------------------------------- demo world


@dataclass(frozen=True)
class FaultRates:
    """Probabilities of each controlled fault when the generator writes a response."""

    missing: float = 0.0  # an asked attribute is not answered
    wrong: float = 0.0  # an asked attribute gets a wrong value
    irrelevant: float = 0.0  # a sentence about something not asked
    repeated: float = 0.0  # a sentence is said twice
    toxic: float = 0.0  # an insult is inserted
    abrupt: float = 0.0  # the response stops mid-sentence


@dataclass(frozen=True)
class DemoWorldConfig:
    """The generated miniature world: entities, their attributes, prompts and responses."""

    n_entities: int
    name_syllables: list[str]
    attributes: dict[str, list[str]]  # attribute -> its value vocabulary (disjoint)
    statement_templates: dict[str, str]  # attribute -> "{entity} ... {value}."
    question_template: str  # "{attributes}" and "{entity}" are filled in
    max_asked: int
    irrelevant_sentences: list[str]
    toxic_words: list[str]
    n_prompts: dict[str, int]  # split -> number of prompts
    responses_per_prompt: int
    response_faults: FaultRates
    demonstration_faults: FaultRates
    preference_temperature: float  # Bradley-Terry noise of the simulated annotators
    rating_noise: float  # std of the noise on absolute 1..5 ratings
    malformed_rows: int  # raw rows written with format faults, to exercise cleaning


@dataclass(frozen=True)
class GoldConfig:
    """Weights of the gold reward components (computed from the world, never learned)."""

    source: str = "world"  # the source whose table holds the world's facts
    relevance: float = 1.0
    factuality: float = 1.0
    completeness: float = 1.0
    toxicity: float = 1.0


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SourceConfig:
    """A raw data source: a pinned hub dataset, or a local copy (``path`` wins when both are set).

    ``loader`` names a function in ``rlhf_core.data.loaders``; ``files`` maps the loader's logical
    file names to paths inside the source; ``options`` are the loader's own keyword settings.
    """

    loader: str
    hub_id: str | None = None
    revision: str | None = None
    path: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetConfig:
    """A table derived from sources or other datasets by a named builder (cleaning, RM files)."""

    builder: str
    inputs: list[str]
    options: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class ComputeConfig:
    """How training runs (not what it computes): precision, micro-batches, adapters (where: ``launcher``).

    ``train.batch_size`` stays the global batch of one optimiser step; ``micro_batch_size`` rows per
    forward on one process set the gradient accumulation (None: the global batch split over processes).
    """

    precision: Literal["no", "bf16", "fp16"] = "no"
    micro_batch_size: int | None = None
    gradient_checkpointing: bool = False
    compile: bool | None = None  # torch.compile; None: on where CUDA is available
    lora: LoraConfig | None = None
    quantization: Literal["4bit", "8bit"] | None = None  # QLoRA base weights (bitsandbytes, CUDA only)

    def __post_init__(self) -> None:
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ConfigError(f"micro_batch_size must be >= 1, got {self.micro_batch_size}")
        if self.quantization is not None and self.lora is None:
            raise ConfigError("quantization trains adapters only: set lora as well")


@dataclass(frozen=True)
class SFTConfig:
    data: str  # dataset name with prompt/completion columns
    model: ModelSource
    train: TrainConfig


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 48
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0  # nucleus sampling ([CRS] 0.9); 1.0: off
    batch_size: int = 64


@dataclass(frozen=True)
class ReferenceValueConfig:
    """A-LoL value estimate V_ref(x) (docs/sources.md §6.2)."""

    num_heads: int = 8
    max_value: float = 1.0
    epochs: int = 5
    lr: float = 2e-5
    batch_size: int = 32
    dropout: float = 0.1
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    num_beams: int = 2  # docs/sources.md §6.2 generation-task settings
    repetition_penalty: float = 2.5


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
    judge: JudgeConfig | None = None  # pairwise win rates against a baseline (config_judge.py)
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


@dataclass(frozen=True)
class TaskConfig:
    task: str
    seed: int
    seeds: list[int] = field(default_factory=list)  # training seeds of the policies (stages/trials.py)
    world: DemoWorldConfig | None = None
    gold: GoldConfig | None = None
    tokenizer: TokenizerConfig | None = None
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    annotation: AnnotationConfig | None = None
    sft: SFTConfig | None = None
    reward_models: dict[str, RewardModelSpec] = field(default_factory=dict)
    reward_model_eval: RewardModelEvalConfig | None = None
    reward_bench: RewardBenchConfig | None = None
    reference_value: ReferenceValueConfig | None = None
    policy: PolicyConfig | None = None
    evaluation: EvaluationConfig | None = None
    feedback: FeedbackConfig | None = None  # human labels through the annotation tool (config_feedback.py)
    human_rankings: HumanRankingsConfig | None = None  # an exported human ranking study, scored
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)  # where stages run; in no key

    def _check_embedding_tables(self, where: str, builders: dict[str, str]) -> None:
        """The datasets exist and come from the given embedding builders (that they share one
        backbone is checked when the tables meet: ``stages.rm_kinds.check_same_backbone``)."""
        for name, builder in builders.items():
            if name not in self.datasets or self.datasets[name].builder != builder:
                raise ConfigError(f"{where}: dataset {name!r} must be an embedding table of builder {builder!r}")

    def _check_names(self) -> None:
        """Every loader, builder, scorer and ranking metric the config names exists, so a typo fails
        when the config loads, not steps later (algorithm names: ``PolicyConfig``)."""
        named = [(f"sources.{n}.loader", s.loader, declared_names(LOADERS, "loader")) for n, s in self.sources.items()]
        named += [
            (f"datasets.{n}.builder", d.builder, declared_names(LOADERS, "builder")) for n, d in self.datasets.items()
        ]
        scorers = self.annotation.scorers if self.annotation else {}
        named += [
            (f"annotation.scorers.{n}.scorer", s.scorer, declared_names(SCORERS, "register"))
            for n, s in scorers.items()
        ]
        metrics = self.evaluation.metrics if self.evaluation else {}
        named += [
            (f"evaluation.metrics.{n}.metric", m.metric, declared_names(METRICS, "register"))
            for n, m in metrics.items()
        ]
        if self.evaluation is not None:  # the leaderboard's columns: R, each component, each metric's columns
            rank_by, metrics = self.evaluation.rank_by, self.evaluation.metrics
            by_metric = (
                {rank_by} if any(rank_by.startswith(m) for m in metrics) else set()
            )  # "distinct" -> "distinct-2"
            named.append(("evaluation.rank_by", rank_by, {"reward", *scorers, *metrics, *by_metric}))
        for where, name, known in named:
            if name not in known:
                raise ConfigError(f"{where}: unknown name {name!r}; known: {sorted(known)}")

    def __post_init__(self) -> None:
        self._check_names()
        ann, policy = self.annotation, self.policy
        rm_refs = [s.partition for s in (ann.scorers.values() if ann else ()) if s.model_asset == "reward_model"]
        for name in rm_refs:
            if name not in self.reward_models:
                raise ConfigError(
                    f"annotation: reward model {name!r} is not declared in reward_models ({sorted(self.reward_models)})"
                )
        for name, spec in self.reward_models.items():
            if spec.precomputed_embeddings:
                self._check_embedding_tables(
                    f"reward_models.{name}",
                    {spec.data: "armorm_objective_embeddings", spec.pairs: "armorm_pair_embeddings"},
                )
        if self.reward_bench is not None:
            for name in self.reward_bench.models:
                if name not in self.reward_models or self.reward_models[name].kind in ("fg_token",):
                    raise ConfigError(
                        f"reward_bench.models: {name!r} is not a declared pairwise or scalar reward model"
                    )
                spec = self.reward_models[name]
                if spec.precomputed_embeddings:  # scored on RewardBench's embeddings by the same backbone
                    if self.reward_bench.embeddings is None:
                        raise ConfigError(
                            f"reward_bench: {name!r} scores embeddings; name the RewardBench "
                            "embedding dataset in reward_bench.embeddings"
                        )
                    self._check_embedding_tables(
                        "reward_bench",
                        {spec.pairs: "armorm_pair_embeddings", self.reward_bench.embeddings: "armorm_pair_embeddings"},
                    )
        if self.reward_models and self.sft is None and any(s.init for s in self.reward_models.values()):
            raise ConfigError("reward_models: init sft / scratch needs an sft section")
        if ann is not None and ann.data is None and ann.incoming is None and policy is None:
            raise ConfigError("annotation: give data, incoming, or both (or a policy that scores with its scorers)")
        if policy is None:
            return
        if ann is None:
            raise ConfigError("policy: online RL and the evaluation score with annotation.scorers; add them")
        # Offline RL learns from R, the task's annotated reward of the policy's rows.
        if policy.data is not None and (ann is None or ann.data != policy.data):
            raise ConfigError(
                f"policy.data {policy.data!r} must be the annotated dataset (annotation.data): "
                "offline RL trains on its rewards"
            )
        if (self.sft is None) == (policy.init is None):
            raise ConfigError("policy: start from the sft stage or from policy.init, exactly one")
        if policy.prompts is None and self.sft is None:
            raise ConfigError("policy.prompts: name the prompts dataset (there is no sft.data to default to)")
        unknown = sorted(set(policy.fg_ppo.rewards) - set(ann.scorers)) if policy.fg_ppo else []
        if unknown:
            raise ConfigError(f"policy.fg_ppo.rewards {unknown} are not annotation.scorers components")
        judge = self.evaluation.judge if self.evaluation else None
        unknown = sorted({judge.scorer, *judge.agreement} - {None} - set(ann.scorers)) if judge else []
        if unknown:
            raise ConfigError(f"evaluation.judge: {unknown} are not annotation.scorers components")


# ----------------------------------------------------------------------------- loading


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), profile: str | None = None
) -> TaskConfig:
    """Read a task YAML (or a resolved JSON, which YAML reads too), overlay the profile
    (``configs/profiles/<profile>.yaml``, or for a per-task profile such as ``tiny``,
    ``configs/profiles/<profile>/<task>.yaml``), apply ``key.path=value`` overrides (they win over the
    profile), and validate strictly."""
    path = Path(path)
    raw = _read_mapping(path, "task config")
    label = path.name
    if profile is not None:
        per_task = profiles_dir() / profile
        where = per_task / f"{raw.get('task', path.stem)}.yaml" if per_task.is_dir() else per_task.with_suffix(".yaml")
        _overlay(raw, _read_mapping(where, "profile"))
        label = f"{path.name} with profile {profile}"
    for item in overrides:
        apply_override(raw, item, path.name)
    try:
        return parse_section(TaskConfig, raw)
    except ConfigError as err:
        raise ConfigError(f"{label}: {err}") from None


def _read_mapping(path: Path, kind: str) -> dict:
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"{path}: no such {kind}; known: {known}")
    try:
        # A resolved JSON is read as JSON: YAML 1.1 reads a float such as 1e-08 (no dot) as a string.
        raw = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}{_yaml_position(err)}: invalid YAML: {_yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: top level must be a mapping")
    return raw


def _yaml_position(err: yaml.YAMLError) -> str:
    """``:line:column`` (1-based, as editors count) of a YAML error, where the parser knows it."""
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    return " ".join(p for p in (context, problem) if p) if problem else str(err).splitlines()[0]


def _overlay(base: dict, top: dict) -> None:
    """Merge ``top`` into ``base`` in place: mappings recursively, anything else replaced. A mapping marked
    ``_replace: true`` replaces the base's mapping whole (a scorer's parameters for another base model)."""
    for key, value in top.items():
        if isinstance(value, dict) and value.get("_replace") is True:
            base[key] = {k: v for k, v in value.items() if k != "_replace"}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value


def warn_if_unpinned(hub_id: str, revision: str) -> None:
    """A branch or tag can move under a finished run; only a commit sha reproduces it."""
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        logging.getLogger(__name__).warning(
            "%s@%s: the revision is not a commit sha, so this download is not reproducible", hub_id, revision
        )


def task_config_path(task: str) -> Path:
    return tasks_dir() / f"{task}.yaml"


def header_command(path: Path) -> str | None:
    """The first ``rlhf run`` command of a task file's header comment, its ``\\`` continuations
    joined into one line (the seed tasks' fixture command), or None."""
    if not path.is_file():
        return None
    command = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if command is None and text.startswith("rlhf run"):
            command = text
        elif command is not None and command.endswith("\\"):
            command = command[:-1].rstrip() + " " + text
        elif command is not None:
            break
    return command.split("  #")[0].strip() if command else None
