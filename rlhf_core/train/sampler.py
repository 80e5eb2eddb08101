"""Batched sampling for causal LMs with a KV cache: our own decode loop for PPO rollouts.

It makes the same choices as ``transformers`` ``generate`` (greedy or multinomial sampling)
so that, for the same seed and settings, it emits identical tokens:

- prompts are left-padded; position ids are ``cumsum(mask) - 1`` (0 on padding) and grow by one
  per step, and the attention mask grows by a column of ones;
- only the last position's logits are computed (``logits_to_keep=1``), cast to float32;
- temperature, then top-k, then top-p are applied with HF's own warpers, in HF's order;
- one ``torch.multinomial`` over the whole batch per step (the same RNG draws);
- finished rows emit ``pad_token_id``; decoding stops once every row has emitted EOS.

A batch sampled by several processes together (data-parallel online RL) passes each process's
``Shard``: every process draws the noise of the whole batch and keeps its rows (on CPU the same
draws as ``multinomial`` over the whole batch, which is ``argmax(p / Exp(1) noise)``), and all of
them decode until every row of every process has ended, so a row's tokens and the width are
those of one process sampling the whole batch.

Encoder-decoder models (T5, [FG]'s policy) run the encoder once and decode from
``decoder_start_token_id`` with an encoder-decoder cache, as ``generate`` does.

It is leaner than ``generate`` because it skips the per-step generic machinery (input
preparation, stopping-criteria objects, logits-processor lists, output bookkeeping).

``static=True`` (causal LMs) preallocates the KV cache for prompt + ``max_new_tokens`` and feeds
``cache_position``, so every decode step has the same shapes and ``torch.compile`` (the decode
forward, ``reduce-overhead``: CUDA graphs) can replay it; the tokens stay the same.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache, EncoderDecoderCache, StaticCache
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


@dataclass(frozen=True)
class Shard:
    """This process's rows ``start ..`` of a batch of ``total`` rows that all processes sample together."""

    start: int
    total: int

    def draw(self, probs: torch.Tensor) -> torch.Tensor:
        """One token per row, from the noise of the whole batch (``multinomial``'s draw for one sample)."""
        noise = torch.empty(self.total, probs.shape[1], device=probs.device).exponential_(1)
        return (probs / noise[self.start : self.start + len(probs)]).argmax(-1)

    @staticmethod
    def all_done(done: bool, device: torch.device) -> bool:
        import torch.distributed as dist

        left = torch.tensor([0 if done else 1], device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(left)
        return int(left.item()) == 0


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    static: bool = False  # static KV cache (causal LMs), for a compiled decode step
    compile: bool = False  # torch.compile the decode step (needs static)

    def __post_init__(self) -> None:
        if self.compile and not self.static:
            raise ValueError("a compiled decode step needs the static cache (static=True)")

    def hf_kwargs(self) -> dict:
        """The same settings as ``generate`` keyword arguments (HF's top_k default 50 switched off)."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
        }


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


class _CausalStep:
    """One decode step of a causal LM: left-padded prompt, positions from the mask, growing mask."""

    def __init__(self, model, input_ids, attention_mask, max_new_tokens, static: bool = False, decode=None):
        self.model, self.width, self.static = model, input_ids.shape[1], static
        total = self.width + max_new_tokens
        self.mask = torch.ones(input_ids.shape[0], total, dtype=attention_mask.dtype, device=input_ids.device)
        self.mask[:, : self.width] = attention_mask
        positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
        self.next_pos = positions[:, -1:] + 1
        self.cache = (
            StaticCache(config=model.config, max_cache_len=total) if static else DynamicCache(config=model.config)
        )
        self.first = dict(input_ids=input_ids, position_ids=positions)
        if static:
            self.first["cache_position"] = torch.arange(self.width, device=input_ids.device)
        self.decode = decode or model  # the (compiled) forward of the one-token steps
        # like generate: compute only the last position's logits when the model allows it
        self.keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}

    def __call__(self, tokens: torch.Tensor | None) -> torch.Tensor:
        forward = self.model
        if tokens is None:
            inputs = self.first
        else:
            inputs = dict(input_ids=tokens[:, None], position_ids=self.next_pos)
            if self.static:  # same shapes every step: the whole mask, the slot to write
                inputs["cache_position"] = torch.tensor([self.width], device=tokens.device)
            self.width += 1
            self.next_pos = self.next_pos + 1
            forward = self.decode
        mask = self.mask if self.static else self.mask[:, : self.width]
        out = forward(**inputs, attention_mask=mask, cache=self.cache, use_cache=True, **self.keep)
        return out.logits[:, -1]


class _Seq2SeqStep:
    """One decode step of an encoder-decoder: the encoder runs once, the decoder starts from its start token."""

    def __init__(self, model, input_ids, attention_mask):
        self.model, self.mask = model, attention_mask
        self.encoded = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        self.cache = EncoderDecoderCache(DynamicCache(config=model.config), DynamicCache(config=model.config))
        self.start = torch.full(
            (input_ids.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long, device=input_ids.device
        )

    def __call__(self, tokens: torch.Tensor | None) -> torch.Tensor:
        dec = self.start if tokens is None else tokens[:, None]
        out = self.model(
            encoder_outputs=self.encoded,
            attention_mask=self.mask,
            decoder_input_ids=dec,
            cache=self.cache,
            use_cache=True,
        )
        return out.logits[:, -1]


def compiled_forward(model):
    """``torch.compile`` of the model's forward for the one-token decode steps, built once per model."""
    if getattr(model, "_rlhf_decode", None) is None:
        model._rlhf_decode = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    return model._rlhf_decode


@torch.inference_mode()
def sample(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    settings: SamplingSettings,
    eos_token_id: int,
    pad_token_id: int,
    shard: Shard | None = None,
) -> torch.Tensor:
    """Completion ids (B, T<=max_new_tokens) for the prompts (left-padded for causal LMs); rows end in
    EOS then padding. Encoder-decoder completions exclude the decoder start token. With ``shard``,
    the prompts are this process's rows of a batch that every process samples at once."""
    warpers = _warpers(settings)
    if model.config.is_encoder_decoder:
        step = _Seq2SeqStep(model, input_ids, attention_mask)
    else:
        step = _CausalStep(
            model,
            input_ids,
            attention_mask,
            settings.max_new_tokens,
            settings.static,
            compiled_forward(model) if settings.compile else None,
        )
    logits = step(None)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    tokens = []
    for i in range(settings.max_new_tokens):
        scores = logits.to(dtype=torch.float32)
        for warp in warpers:
            scores = warp(None, scores)
        if settings.do_sample and shard is not None:
            nxt = shard.draw(torch.softmax(scores, dim=-1))
        elif settings.do_sample:
            nxt = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            nxt = torch.argmax(scores, dim=-1)
        nxt = nxt * unfinished + pad_token_id * (1 - unfinished)
        tokens.append(nxt)
        unfinished = unfinished & (nxt != eos_token_id).long()
        done = not bool(unfinished.any())
        if shard is not None:
            done = Shard.all_done(done, unfinished.device)
        if i + 1 == settings.max_new_tokens or done:
            break
        logits = step(nxt)
    return torch.stack(tokens, dim=1)
