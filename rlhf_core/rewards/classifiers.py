"""Sequence classifiers: the [LoL] RoBERTa rewards (docs/sources.md §3.2) and a reward model's raw
logit (docs/sources.md §3.4).

    fluency = build_scorer("fluency", revision="<sha>")        # textattack/roberta-base-CoLA
    faithful = build_scorer("faithcritic", revision="<sha>")   # McGill-NLP/roberta-large-faithcritic
    reward = build_scorer("rm_logit", model="artifacts/demo/reward_model/<key>")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


@register("rm_logit")
class RewardModelLogitScorer(BatchedModelScorer):
    """The raw logit of a one-output reward model on ``prompt + completion`` ([WA], docs/sources.md §3.4).

    Input: the prompt followed by the response as ``response_template`` writes it (the response
    alone by default; [LoL]'s OASST RM reads ``"{response}<|endoftext|>"``, docs/sources.md §3.2),
    as one text with the tokenizer's own special tokens, truncated on the left so the response is
    kept. Value: logits[:, 0], no squashing. This is also how a task scores its data with a reward
    model it trained itself (``model_asset``).
    """

    name = "rm_logit"
    default_model = None
    truncation_side = "left"

    chat_tokenizer = None  # a tokenizer whose chat template renders the text (rm_text): trained [RF] RMs

    def __init__(self, response_template: str = "{response}", **kwargs: Any):
        super().__init__(**kwargs)
        self.response_template = response_template
        if self.model.config.pad_token_id is None:  # decoder RMs pool at the last non-pad token
            self.model.config.pad_token_id = self.pad_id

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], None]:
        from rlhf_core.train.reward_model import rm_text

        return [rm_text(p, r, self.response_template, self.chat_tokenizer) for p, r in zip(prompts, responses)], None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits.float()[:, 0]
