"""Any reward model this pipeline trained, as a scorer, whatever its kind.

    scorer = build_scorer("reward_model", model="data/artifacts/demo/reward_model/bt/<key>")
    scores = scorer(prompts, completions)

A task names one with ``{scorer: reward_model, model_asset: reward_model, partition: <name>}``.
The artifact's ``reward_model.json`` (written by the ``reward_model`` stage) says its kind and
settings, and the kind says what a score is:

- one-logit kinds (``bradley_terry``, ``fg_sequence_preference``, ``crs_ranking``,
  ``crs_absolute``): the raw logit on ``prompt + completion``, encoded as in training (with
  ``chat_template``, the chat-rendered conversation: a plain prompt is one user message). The
  absolute RM was trained through a sigmoid; its score is the pre-sigmoid logit, as [CRS] RL
  uses it (docs/sources.md §3.3).
- ``fg_token``: ``Σ_segments (+1 if no error else −1)``, the [FG] per-segment reward summed with
  unit magnitude (docs/sources.md §3.1); ``segment_errors`` gives the per-segment flags and
  ``segment_rewards`` the dense rewards of fine-grained PPO.
- ``pairwise_preference``: has no pointwise score; ``preference(prompts, a, b)`` is
  P(a preferred), averaged over both orders (docs/sources.md §3.5).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rlhf_core.rewards.base import register
from rlhf_core.rewards.classifiers import RewardModelLogitScorer
from rlhf_core.rewards.model_loading import load_model_and_tokenizer

RM_SPEC = "reward_model.json"
SCORE_VERSION = "2"  # bump when a kind's score changes for the same weights (2: fg_token ties are errors)


def rm_spec(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / RM_SPEC
    if not path.exists():
        raise FileNotFoundError(f"{model_dir}: not a trained reward model (no {RM_SPEC})")
    return json.loads(path.read_text())


class SequenceRMScorer(RewardModelLogitScorer):
    """A one-logit RM with its training-time truncation side and length."""

    name = "reward_model"

    def __init__(self, model: str, spec: dict[str, Any], **kwargs: Any):
        self.truncation_side = spec["truncation_side"]
        super().__init__(
            model=model,
            response_template=spec["response_template"],
            max_length=kwargs.pop("max_length", spec["max_length"]),
            **kwargs,
        )
        self.chat_tokenizer = self.tokenizer if spec.get("chat_template") else None  # older artifacts: plain
        self.version = f"{SCORE_VERSION}+{self.version}"


class TokenRMScorer:
    """An [FG] R1/R2 token classifier: segment rewards summed (see the module docstring)."""

    name = "reward_model"

    def __init__(self, model: str, spec: dict[str, Any], device: str | None = None, **_: Any):
        from transformers import AutoModelForTokenClassification

        self.spec = spec
        self.model, self.tokenizer, self.device = load_model_and_tokenizer(
            AutoModelForTokenClassification, model, None, device
        )
        self.version = f"{SCORE_VERSION}+fg_token+{Path(model).resolve()}"

    def segment_errors(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[bool]]:
        from rlhf_core.train.rm_token import segment_errors

        return segment_errors(self.model, self.tokenizer, self.spec, list(prompts), list(completions))

    def segment_rewards(self, prompts: list[str], completions: list[str]) -> list[list[tuple[int, float]]]:
        """Dense rewards (``rlhf_core.rewards.dense``): -1 / +1 on the character where each segment
        ends; segments cut off by truncation get none."""
        from rlhf_core.data.segmentation import reward_segments

        ends = [[end for _, end in reward_segments(c, self.spec["segmentation"])] for c in completions]
        return [
            [(end, -1.0 if err else 1.0) for end, err in zip(row_ends, errs)]
            for row_ends, errs in zip(ends, self.segment_errors(prompts, completions))
        ]

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return [float(sum(-1 if e else 1 for e in errs)) for errs in self.segment_errors(prompts, completions)]


class PairPMScorer:
    """[RF] pair-PM: a causal LM that answers which of two responses is better."""

    name = "reward_model"

    def __init__(self, model: str, spec: dict[str, Any], device: str | None = None, **_: Any):
        from transformers import AutoModelForCausalLM

        self.spec = spec
        self.model, self.tokenizer, self.device = load_model_and_tokenizer(AutoModelForCausalLM, model, None, device)
        self.version = f"{SCORE_VERSION}+pairwise_preference+{Path(model).resolve()}"

    @torch.inference_mode()
    def preference(self, prompts: Sequence[str], first: Sequence[str], second: Sequence[str]) -> list[float]:
        from rlhf_core.train.pair_pm import preference_probability

        return preference_probability(self.model, self.tokenizer, self.spec, list(prompts), list(first), list(second))

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        raise TypeError("a pairwise preference model scores pairs, not single responses: use preference()")


@register("reward_model")
def trained_reward_model(model: str, **params: Any):
    """The scorer of the trained RM in directory ``model``, by the kind its ``reward_model.json`` names."""
    spec = rm_spec(model)
    kind = spec["kind"]
    if kind == "fg_token":
        return TokenRMScorer(model, spec, **params)
    if kind == "pairwise_preference":
        return PairPMScorer(model, spec, **params)
    if kind == "armo":
        from rlhf_core.rewards.armo_scorer import ArmoScorer

        return ArmoScorer(model, spec, **params)
    return SequenceRMScorer(model, spec, **params)
