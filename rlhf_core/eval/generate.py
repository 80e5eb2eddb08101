"""Batched generation from any causal or encoder-decoder LM on its own device: left-padded prompts, KV cache, stop at
EOS, new text only."""

from __future__ import annotations

import torch

from rlhf_core.config import GenerationConfig
from rlhf_core.models.load import max_positions
from rlhf_core.progress import progress_bar
from rlhf_core.train.batching import to_device


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    cfg: GenerationConfig,
    seed: int = 0,
    num_beams: int = 1,
    repetition_penalty: float = 1.0,
) -> list[str]:
    model.eval()
    torch.manual_seed(seed)
    # Sorting by length keeps padding small; results go back to input order.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    sampling = (
        {"do_sample": True, "temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p}
        if cfg.do_sample
        else {"do_sample": False}
    )
    for start in progress_bar(range(0, len(order), cfg.batch_size), desc="generate"):
        idx = order[start : start + cfg.batch_size]
        enc = tokenizer(
            [prompts[i] for i in idx], add_special_tokens=False, padding=True, return_tensors="pt", padding_side="left"
        )
        enc = to_device(dict(enc), model)
        seq2seq = model.config.is_encoder_decoder  # its decoder does not continue the prompt's positions
        max_new = (
            cfg.max_new_tokens
            if seq2seq
            else min(cfg.max_new_tokens, max_positions(model.config) - enc["input_ids"].shape[1])
        )
        tokens = model.generate(
            **enc,
            use_cache=True,
            max_new_tokens=max_new,
            num_beams=num_beams,
            repetition_penalty=repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
        # A causal LM returns prompt + continuation, an encoder-decoder the decoder's tokens only.
        new_tokens = tokens if seq2seq else tokens[:, enc["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(idx, texts):
            out[i] = text
    return out
