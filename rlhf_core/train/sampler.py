"""Batched sampling for causal LMs with a KV cache: our own decode loop for PPO rollouts.

It makes the same choices as ``transformers`` ``generate`` (greedy or multinomial sampling)
so that, for the same seed and settings, it emits identical tokens:

- prompts are left-padded; position ids are ``cumsum(mask) - 1`` (0 on padding) and grow by one
  per step, and the attention mask grows by a column of ones;
- only the last position's logits are computed (``logits_to_keep=1``), cast to float32;
- temperature, then top-k, then top-p are applied with HF's own warpers, in HF's order;
- one ``torch.multinomial`` over the whole batch per step (the same RNG draws);
- finished rows emit ``pad_token_id``; decoding stops once every row has emitted EOS.

It is leaner than ``generate`` because it skips the per-step generic machinery (input
preparation, stopping-criteria objects, logits-processor lists, output bookkeeping).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def hf_kwargs(self) -> dict:
        """The same settings as ``generate`` keyword arguments (HF's top_k default 50 switched off)."""
        return {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample,
                "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


def _warpers(s: SamplingSettings) -> list:
    if not s.do_sample:
        return []
    warpers = []
    if s.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        warpers.append(TopKLogitsWarper(top_k=s.top_k))
    if s.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=s.top_p))
    return warpers


@torch.inference_mode()
def sample(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, settings: SamplingSettings,
           eos_token_id: int, pad_token_id: int) -> torch.Tensor:
    """Completion ids (B, T<=max_new_tokens) for left-padded prompts; rows end in EOS then padding."""
    warpers = _warpers(settings)
    batch = input_ids.shape[0]
    mask = torch.ones(batch, input_ids.shape[1] + settings.max_new_tokens, dtype=attention_mask.dtype,
                      device=input_ids.device)
    width = input_ids.shape[1]
    mask[:, :width] = attention_mask
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    next_pos = positions[:, -1:] + 1
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=mask[:, :width], position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1)
    unfinished = torch.ones(batch, dtype=torch.long, device=input_ids.device)
    tokens = []
    for step in range(settings.max_new_tokens):
        scores = out.logits[:, -1].to(dtype=torch.float32)
        for warp in warpers:
            scores = warp(None, scores)
        if settings.do_sample:
            nxt = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            nxt = torch.argmax(scores, dim=-1)
        nxt = nxt * unfinished + pad_token_id * (1 - unfinished)
        tokens.append(nxt)
        unfinished = unfinished & (nxt != eos_token_id).long()
        if step + 1 == settings.max_new_tokens or not bool(unfinished.any()):
            break
        width += 1
        out = model(input_ids=nxt[:, None], attention_mask=mask[:, :width], position_ids=next_pos, cache=cache,
                    use_cache=True, logits_to_keep=1)
        next_pos = next_pos + 1
    return torch.stack(tokens, dim=1)
