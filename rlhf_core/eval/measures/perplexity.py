"""Fluency as perplexity under a reference LM ([FG] detox, after Quark: GPT-2 XL)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlhf_core.eval.registry import EvalGroup, register


@register("perplexity")
class Perplexity:
    """Per sample ``exp(mean NLL of the completion's tokens given the prompt)`` under ``model`` (a model source:
    ``{hub_id, revision}`` or ``{path}``); samples at or above ``max_perplexity`` are left out as outliers and the
    rest averaged, as Quark does (1e4)."""

    version = "1"

    def __init__(
        self, model: dict[str, Any], max_length: int = 1024, batch_size: int = 16, max_perplexity: float = 1e4
    ):
        from rlhf_core.config import ModelSource
        from rlhf_core.config.parse import parse_section

        self.source = parse_section(ModelSource, model, "perplexity.model")
        self.max_length, self.batch_size, self.max_perplexity = max_length, batch_size, max_perplexity

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        import torch

        from rlhf_core.models.load import load_policy, load_tokenizer
        from rlhf_core.train.batching import collate, encode_pairs, token_logprobs

        model, tok = load_policy(self.source), load_tokenizer(self.source)
        model.eval()
        enc = encode_pairs(
            tok,
            group.column("prompt", "perplexity").tolist(),
            group.column("completion", "perplexity").tolist(),
            self.max_length,
            add_eos=False,
        )
        ppl = []
        with torch.inference_mode():
            for s in range(0, len(enc.ids), self.batch_size):
                batch = collate(
                    enc.ids[s : s + self.batch_size],
                    enc.n_prompt[s : s + self.batch_size],
                    tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                )
                logp, mask = token_logprobs(model, batch)
                nll = -(logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)
                ppl += [math.exp(float(x)) if m > 0 else float("nan") for x, m in zip(nll, mask.sum(-1))]
        kept = [p for p in ppl if p < self.max_perplexity]
        return {"": float(np.nanmean(kept)) if kept else float("nan")}
