"""Tokenise prompt/response pairs for causal LMs and compute per-token log-probs.

A sequence is ``prompt tokens + response tokens + EOS``. When it is too long the prompt is
truncated on the left and the response on the right (docs/sources.md §6.2); truncations are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlhf_core.rewards.batching import pad_batch


@dataclass
class Encoded:
    ids: list[list[int]]
    n_prompt: list[int]  # prompt tokens at the start of each sequence
    truncated: int


def encode_pairs(
    tokenizer, prompts: list[str], completions: list[str], max_length: int, add_eos: bool = True
) -> Encoded:
    p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if add_eos else []
    ids, n_prompt, truncated = [], [], 0
    for p, c in zip(p_ids, c_ids):
        c = c + eos
        if len(p) + len(c) > max_length:
            truncated += 1
            c = c[: max_length - 1]
            p = p[-(max_length - len(c)) :]
        ids.append(p + c)
        n_prompt.append(len(p))
    return Encoded(ids, n_prompt, truncated)


def collate(ids: list[list[int]], n_prompt: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch (``pad_batch``, shared with the reward scorers) plus a mask over response tokens."""
    batch = pad_batch([{"input_ids": x} for x in ids], pad_id, "cpu")
    positions = torch.arange(batch["input_ids"].shape[1])
    lengths = batch["attention_mask"].sum(dim=1, keepdim=True)
    batch["response_mask"] = (positions >= torch.tensor(n_prompt)[:, None]) & (positions < lengths)
    return batch


def to_device(batch: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """The batch on the device of the model's first parameter (a no-op on CPU)."""
    device = next(model.parameters()).device
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def token_logprobs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(y_t | x, y_<t) at every response position: ``(logp (B, T-1), mask (B, T-1))``.

    The logit for token t sits at position t-1, so targets are the inputs shifted by one. Logits
    are computed only from the batch's first response position on (``logits_to_keep``): the
    output head and the softmax over the vocabulary skip the prompt, whose log-probs are masked
    out anyway; those columns are returned as zeros.
    """
    batch = to_device(batch, model)
    ids, response = batch["input_ids"], batch["response_mask"]
    first = max(1, int(response.to(torch.int8).argmax(-1).min()))  # earliest response token in the batch
    logits = model(
        input_ids=ids, attention_mask=batch["attention_mask"], logits_to_keep=ids.shape[1] - first + 1
    ).logits[:, :-1]
    logp = torch.gather(F.log_softmax(logits.float(), dim=-1), 2, ids[:, first:].unsqueeze(-1)).squeeze(-1)
    logp = F.pad(logp, (first - 1, 0))
    mask = response[:, 1:].to(logp.dtype)
    return logp * mask, mask
