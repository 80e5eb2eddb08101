"""Config sections of the reward-model suite: the reward models a task trains by name, how they are
judged against the gold judge, and RewardBench, parsed as strictly as the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlhf_core.config.models import ModelSource
from rlhf_core.config.parse import ConfigError
from rlhf_core.config.train import LoraConfig, TrainConfig

# A task declares the reward models it trains by name; each name is a partition of the
# ``reward_model`` asset and what a scorer names (``{scorer: reward_model, partition: bt}``).

# [FG] R1 / R2: the error tag of each label type and the segment unit of its files (docs/sources.md §2.1).
FG_LABEL_TYPES = {"relevance": ("NF-ERR", "subsentence"), "factuality": ("F-ERR", "sentence")}


SEQUENCE_RM_KINDS = ("bradley_terry", "fg_sequence_preference", "crs_ranking", "crs_absolute")  # one logit


@dataclass(frozen=True)
class RewardModelSpec:
    """One reward model: its kind (the loss, docs/sources.md §5), data, base network and training.

    The base is ``init`` (``sft``: the task's SFT model with a fresh head; ``scratch``: a random
    network of the SFT model's sizes) or ``model`` (a pinned hub id, a local path or a tiny init),
    exactly one. It trains on the ``train_split`` rows of ``data`` and is judged on its
    ``eval_split`` rows (a table without a ``split`` column is all training rows).
    """

    kind: Literal[
        "bradley_terry",
        "fg_sequence_preference",
        "fg_token",
        "crs_ranking",
        "crs_absolute",
        "pairwise_preference",
        "armo",
    ]
    data: str
    train: TrainConfig
    init: Literal["sft", "scratch"] | None = None
    model: ModelSource | None = None
    train_split: str = "train"
    eval_split: str = "test"
    truncation_side: Literal["left", "right"] = "left"  # [RF] truncates on the left (docs/sources.md §5.5)
    response_template: str = "{response}"  # how a response follows the prompt ([CRS]: a ChatML assistant turn)
    # [RF]: prompt and response are one conversation rendered by the model tokenizer's chat template
    # (docs/sources.md §3.5, §5.5); a prompt may be a JSON conversation (rlhf_core.data.chat)
    chat_template: bool = False
    pad_token: str | None = None  # [RF] llama3 / mistral: a new pad token (embeddings resized), not EOS
    lora: LoraConfig | None = None  # adapters for this RM only ([CRS] r 16, alpha 32)
    quantization: Literal["4bit", "8bit"] | None = None  # its pretrained base in 4/8 bit ([CRS]: 8bit; CUDA only)
    # fg_token: which [FG] file (relevance = R1, factuality = R2), its segment unit, and where the
    # segment marker sits: "before" each segment as in [FG] (a bidirectional encoder), or "after" it,
    # so that a causal (GPT-2) base has read the segment when it labels it.
    label_type: Literal["relevance", "factuality"] | None = None
    segmentation: Literal["sentence", "subsentence"] | None = None
    marker: Literal["before", "after"] = "before"
    # armo: the objectives of stage 1 (columns of ``data``, or the gold judge's components on the
    # demo) and the preference pairs of stage 2.
    objectives: list[str] = field(default_factory=list)
    pairs: str | None = None
    verbosity_objective: str | None = None  # the objective others are debiased against ([RF]: helpsteer-verbosity)
    # armo on the backbone embedding tables of the data layer (the armorm_*_embeddings datasets
    # ``data`` and ``pairs``): no base network here, the backbone is the one those tables name
    precomputed_embeddings: bool = False
    gating_steps: int | None = None  # armo stage-2 steps ([RF]: 2000); default: train.epochs over the pairs

    def __post_init__(self) -> None:
        if self.precomputed_embeddings:
            if self.kind != "armo" or self.init is not None or self.model is not None:
                raise ConfigError(
                    "precomputed_embeddings is an armo setting, without init or model: the "
                    "backbone is the embedding tables' own"
                )
        elif (self.init is None) == (self.model is None):
            raise ConfigError("give exactly one of init (sft, scratch) and model")
        if self.chat_template and (self.kind not in SEQUENCE_RM_KINDS or self.response_template != "{response}"):
            raise ConfigError(
                f"chat_template renders prompt and response of a one-logit RM, without a "
                f"response_template; not for kind {self.kind}"
            )
        if self.pad_token is not None and (self.kind not in SEQUENCE_RM_KINDS or self.lora is not None):
            raise ConfigError("pad_token resizes the embeddings of a fully trained one-logit RM (not with lora)")
        if self.gating_steps is not None and (self.kind != "armo" or self.gating_steps < 1):
            raise ConfigError("gating_steps is a positive number of armo stage-2 steps")
        if self.kind == "fg_token" and self.label_type is None:
            raise ConfigError("kind fg_token needs label_type (relevance or factuality)")
        if self.kind != "fg_token" and (self.label_type or self.segmentation):
            raise ConfigError(f"label_type and segmentation are fg_token settings, not {self.kind}'s")
        if self.kind == "armo" and (not self.objectives or self.pairs is None):
            raise ConfigError("kind armo needs objectives (stage 1) and pairs (stage 2)")
        if self.verbosity_objective is not None and self.verbosity_objective not in self.objectives:
            raise ConfigError(f"verbosity_objective {self.verbosity_objective!r} is not one of {self.objectives}")
        if self.quantization is not None and (self.lora is None or self.model is None):
            raise ConfigError("quantization loads a pretrained `model` to train adapters on: set model and lora")

    @property
    def unit(self) -> str:
        """The segment unit of an fg_token RM: the configured one, else its [FG] file's."""
        return self.segmentation or FG_LABEL_TYPES[self.label_type][1]


@dataclass(frozen=True)
class RewardModelEvalConfig:
    """How every RM is judged against the gold judge (tasks with one): the logged responses of
    ``split`` in ``responses``, and ``samples_per_prompt`` fresh samples of the SFT model per prompt,
    responses no training pair was built from."""

    responses: str
    split: str = "test"
    samples_per_prompt: int = 2
    max_new_tokens: int = 40


@dataclass(frozen=True)
class RewardBenchConfig:
    """[RF] RewardBench (docs/sources.md §7.5): trained RMs scored on a table of RewardBench pairs
    (``prompt, chosen, rejected, subset``). ``counts``: the official subset weights, or the seed
    BT script's (xstest weights swapped, docs/sources.md §10.10)."""

    data: str
    models: list[str]  # names under reward_models
    counts: Literal["official", "seed"] = "official"
    # RewardBench's backbone embeddings (an armorm_pair_embeddings dataset), which the ArmoRMs
    # trained on precomputed embeddings are scored on
    embeddings: str | None = None
