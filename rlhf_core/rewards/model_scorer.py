"""What every neural scorer shares: loading, input building, batched scoring, truncation counts.

A subclass says which model class to load, how a (prompt, completion) row becomes model text
(``model_inputs``) and how a padded batch becomes one value per row (``forward``); loading, encoding,
length-bucketed batching and result ordering live here once.

    scorer = FluencyScorer(model="textattack/roberta-base-CoLA", revision="<sha>")
    scores = scorer(prompts, completions)                  # TRL reward-function signature
    result = scorer.score_with_stats(prompts, completions) # plus per-row truncation flags
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from rlhf_core.models.load import EOS, max_positions  # EOS: the turn separator of the [LoL] prompts
from rlhf_core.rewards.batching import encode, run_batched
from rlhf_core.rewards.model_loading import load_model_and_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreResult:
    scores: list[float]
    truncated: list[bool]  # the model saw only part of this row's text


class BatchedModelScorer:
    """Base of the model scorers; subclasses set the class attributes and the three hooks."""

    name: ClassVar[str]
    code_version: ClassVar[str] = "1"  # bump when a change here or in a subclass alters scores
    default_model: ClassVar[str | None]
    default_max_length: ClassVar[int] = 512
    add_special_tokens: ClassVar[bool] = True
    truncation_side: ClassVar[str] = "right"

    def __init__(
        self,
        model: str | None = None,
        revision: str | None = None,
        device: str | None = None,
        max_length: int | None = None,
        max_batch_tokens: int | None = None,
        max_batch_size: int = 256,
        progress: bool | None = None,
    ):
        """Load the model.

        Args:
            model: Local directory or hub id (default: the checkpoint the source repo used).
            revision: Commit hash; required for a hub id, ignored for a directory.
            device: None picks CUDA when available.
            max_length: Token cap per input (default 512, never above the model's positions).
            max_batch_tokens: Padded tokens per batch (default 65,536 on GPU, 4,096 on CPU, where
                larger batches spill out of cache; see benchmarks/bench_scoring.py).
            max_batch_size: Cap on rows per batch.
            progress: tqdm bar on/off; None shows it for long runs.
        """
        source = model or self.default_model
        if not source:
            raise ValueError(f"{self.name}: no model given and no default checkpoint")
        self.model, self.tokenizer, self.device = self.load(source, revision, device)
        self.tokenizer.truncation_side = self.truncation_side
        limit = max_positions(self.model.config)
        self.max_length = min(max_length or self.default_max_length, limit)
        self.max_batch_tokens = max_batch_tokens or (65536 if self.device.type == "cuda" else 4096)
        self.max_batch_size = max_batch_size
        self.progress = progress
        self.pad_id = self.tokenizer.pad_token_id
        where = str(Path(source).resolve()) if Path(source).is_dir() else f"{source}@{revision}"
        # The weights are part of the version: other weights, other scores, stale annotations.
        self.version = f"{self.code_version}+{where}"

    # ----------------------------------------------------------------------------- hooks

    def load(self, source: str, revision: str | None, device: str | None) -> tuple[Any, Any, torch.device]:
        """Model, tokenizer and device; the default is a Hugging Face sequence classifier."""
        from transformers import AutoModelForSequenceClassification

        return load_model_and_tokenizer(AutoModelForSequenceClassification, source, revision, device)

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str] | None]:
        """The text (and optional pair text) the model reads for each row."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One value per row of a padded batch."""
        raise NotImplementedError

    def invalid_reason(self, prompt: str, completion: str) -> str | None:
        """Why this row cannot be scored (annotation quarantines it), or None."""
        return None

    # ----------------------------------------------------------------------------- scoring

    def score_with_stats(self, prompts: Sequence[str], completions: Sequence[str]) -> ScoreResult:
        """Scores in input order plus which rows were truncated to ``max_length`` tokens."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        for i, (p, c) in enumerate(zip(prompts, completions)):
            reason = self.invalid_reason(p, c)
            if reason:
                raise ValueError(f"{self.name}: row {i}: {reason}")
        # [LoL] strips the policy's trailing EOS from the response before scoring.
        responses = [c.removesuffix(EOS) for c in completions]
        texts, pairs = self.model_inputs(prompts, responses)
        encoded = encode(
            self.tokenizer, texts, pairs, max_length=self.max_length, add_special_tokens=self.add_special_tokens
        )
        values = run_batched(
            self.forward,
            encoded.features,
            self.pad_id,
            self.device,
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            progress=self.progress,
            desc=self.name,
        )
        if encoded.n_truncated:
            log.warning(
                "%s: %d of %d inputs truncated to %d tokens",
                self.name,
                encoded.n_truncated,
                len(texts),
                self.max_length,
            )
        return ScoreResult([float(v) for v in values], encoded.truncated.tolist())

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return self.score_with_stats(prompts, completions).scores

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r}, device={self.device})"
