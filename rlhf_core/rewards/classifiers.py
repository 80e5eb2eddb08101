"""RoBERTa sequence classifiers of the [LoL] rewards (SPEC 3.2): CoLA fluency and FaithCritic.

    fluency = build_scorer("fluency", revision="<sha>")        # textattack/roberta-base-CoLA
    faithful = build_scorer("faithcritic", revision="<sha>")   # McGill-NLP/roberta-large-faithcritic
"""
from __future__ import annotations

from typing import Sequence

import torch

from rlhf_core.rewards.base import register
from rlhf_core.rewards.model_scorer import EOS, BatchedModelScorer


@register("fluency")
class FluencyScorer(BatchedModelScorer):
    """P(acceptable) of the response under a CoLA classifier.

    Input: the response alone, ``<s> resp </s>``, truncated to 512 tokens. Value: softmax(logits)[1],
    which is what the source computes from the pipeline output (score if LABEL_1 else 1 - score).
    """

    name = "fluency"
    default_model = "textattack/roberta-base-CoLA"

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], None]:
        return list(responses), None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.softmax(self.model(**batch).logits.float(), dim=-1)[:, 1]


@register("faithcritic")
class FaithCriticScorer(BatchedModelScorer):
    """P(faithful) of the response to the dialogue's knowledge (WoW / FaithDial).

    Input: the pair ``(knowledge, resp)`` = ``<s> knowledge </s></s> resp </s>``, truncated
    longest-first to 512 tokens, where ``knowledge = prompt.split(EOS, 1)[0][10:]`` (drops the
    ``"Knowledge:"`` prefix, keeps the following space). Value: softmax(logits)[0], the faithful class.
    """

    name = "faithcritic"
    default_model = "McGill-NLP/roberta-large-faithcritic"

    def invalid_reason(self, prompt: str, completion: str) -> str | None:
        return None if EOS in prompt else f"prompt has no {EOS} after the knowledge"

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
        return [p.split(EOS, 1)[0][10:] for p in prompts], list(responses)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.softmax(self.model(**batch).logits.float(), dim=-1)[:, 0]
