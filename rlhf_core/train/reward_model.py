"""Trainers of the one-logit reward models on the shared Engine (docs/sources.md §5.2-§5.5).

    result = train_sequence_rm(ranking_step, model, tokenizer, rows, spec.train, work, compute,
                               truncation_side="left")

Every kind scores ``prompt + response`` with one scalar head (``logits[:, 0]``) and differs only
in its rows and its loss (``rm_losses``), which its trainer passes as a step:

- ``bradley_terry``, ``fg_sequence_preference``: rows ``prompt, chosen, rejected``;
- ``crs_ranking``: rows ``prompt, completions`` (a list, best first, K >= 2);
- ``crs_absolute``: rows ``prompt, completion, score`` (a target in [0, 1]).

The text is ``prompt + response_template.format(response=...)`` ([CRS]:
``<|im_start|>assistant\n{response}<|im_end|>\n`` after the ChatML prefix), or with
``chat_template`` ([RF]) the prompt's conversation and the response rendered by the tokenizer's
chat template, truncated on the left as [RF] does (``rm_text``), encoded exactly as the
``reward_model`` scorer encodes it (``encode_texts``: the tokenizer's own special tokens, truncated
on ``truncation_side``), so a trained RM scores at inference what it saw in training. A decoder
(GPT-2) head reads the last non-pad token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rlhf_core.config import ComputeConfig, TrainConfig
from rlhf_core.rewards.batching import encode, pad_batch
from rlhf_core.train import rm_losses
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps


def encode_texts(tokenizer, texts: list[str], max_length: int, truncation_side: str) -> list[list[int]]:
    """Token ids of each text, as the scorer makes them (special tokens, one truncation side)."""
    tokenizer.truncation_side = truncation_side
    return [f["input_ids"] for f in encode(tokenizer, texts, max_length=max_length).features]


def sequence_scores(model, pad_id: int, ids: list[list[int]]) -> torch.Tensor:
    """``logits[:, 0]`` of a right-padded batch, on the model's device."""
    device = next(model.parameters()).device
    batch = pad_batch([{"input_ids": x} for x in ids], pad_id, device)
    return model(**batch).logits[:, 0].float()


# A kind's step is built from its rows, the encoder of (prompts, responses) and the scoring model;
# each kind's trainer (``stages.rm_kinds``) passes its own, so its code is hashed with its kind alone.
Encode = Callable[[list[str], list[str]], list[list[int]]]
ModelFn = Callable[[list[list[int]]], torch.Tensor]
StepOf = Callable[[pd.DataFrame, Encode, ModelFn], Callable]


def pair_step(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> StepOf:
    """Rows ``prompt, chosen, rejected``; ``loss_fn(chosen_scores, rejected_scores)``."""

    def build(rows: pd.DataFrame, enc: Encode, model_fn: ModelFn):
        prompts = rows["prompt"].tolist()
        chosen, rejected = enc(prompts, rows["chosen"].tolist()), enc(prompts, rows["rejected"].tolist())

        def step(idx: torch.Tensor):
            scores = model_fn([chosen[i] for i in idx] + [rejected[i] for i in idx])
            rc, rr = scores[: len(idx)], scores[len(idx) :]
            return loss_fn(rc, rr), {"accuracy": float((rc > rr).float().mean())}

        return step

    return build


def ranking_step(rows: pd.DataFrame, enc: Encode, model_fn: ModelFn):
    """Rows ``prompt, completions`` (best first): [CRS]'s ranking loss."""
    replies = [enc([p] * len(rs), list(rs)) for p, rs in zip(rows["prompt"], rows["completions"])]

    def step(idx: torch.Tensor):
        ids = [x for i in idx for x in replies[i]]
        bounds = np.cumsum([0] + [len(replies[i]) for i in idx]).tolist()
        scores = model_fn(ids)
        pos, neg = scores[bounds[:-1]], scores[[b - 1 for b in bounds[1:]]]
        return rm_losses.crs_ranking(scores, bounds), {"accuracy": float((pos > neg).float().mean())}

    return step


def absolute_step(rows: pd.DataFrame, enc: Encode, model_fn: ModelFn):
    """Rows ``prompt, completion, score``: [CRS]'s absolute loss."""
    ids = enc(rows["prompt"].tolist(), rows["completion"].tolist())
    targets = torch.tensor(rows["score"].to_numpy(dtype=np.float32))
    low_weight = rm_losses.crs_low_score_weight(targets)  # over the whole training set (docs/sources.md §5.3)

    def step(idx: torch.Tensor):
        logits = model_fn([ids[i] for i in idx])
        y = targets[idx].to(logits.device)
        return rm_losses.crs_absolute(logits, y, low_weight), {
            "mae": float((torch.sigmoid(logits.detach()) - y).abs().mean())
        }

    return step


def rm_text(prompt: str, response: str, template: str, chat_tokenizer=None) -> str:
    """The text an RM reads: ``prompt + template.format(response=...)``, or with ``chat_tokenizer``
    ([RF], docs/sources.md §3.5, §5.5) the conversation of the prompt's messages and the response
    rendered by that tokenizer's chat template, BOS text removed (encoding adds the BOS token)."""
    if chat_tokenizer is not None:
        from rlhf_core.data.chat import chat_text, prompt_messages

        return chat_text(chat_tokenizer, [*prompt_messages(prompt), {"role": "assistant", "content": response}])
    return prompt + template.format(response=response)


def train_sequence_rm(
    step_of: StepOf,
    model,
    tokenizer,
    rows: pd.DataFrame,
    train: TrainConfig,
    work_dir: Path,
    compute: ComputeConfig | None = None,
    truncation_side: str = "left",
    response_template: str = "{response}",
    chat_template: bool = False,
    desc: str = "reward model",
) -> LoopResult:
    """Train a one-logit RM on its training ``rows`` with the step ``step_of`` builds (``pair_step``,
    ``ranking_step``, ``absolute_step``); ``chat_template``: the texts are chat-rendered conversations
    (``rm_text``)."""
    if model.config.pad_token_id is None:  # a decoder head pools at the last non-pad token
        model.config.pad_token_id = tokenizer.pad_token_id
    chat = tokenizer if chat_template else None

    def enc(prompts: list[str], responses: list[str]) -> list[list[int]]:
        texts = [rm_text(p, r, response_template, chat) for p, r in zip(prompts, responses)]
        return encode_texts(tokenizer, texts, train.max_length, truncation_side)

    engine = Engine(model, train, total_steps(train, len(rows)), compute)

    def model_fn(ids: list[list[int]]) -> torch.Tensor:
        return sequence_scores(engine.model, tokenizer.pad_token_id, ids)

    step = step_of(rows, enc, model_fn)
    return engine.run(BatchOrder(len(rows), train.batch_size, train.seed), step, work_dir, desc)
