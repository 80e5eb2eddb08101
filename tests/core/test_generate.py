"""Batched generation works for any causal LM: left-padded batches give what one prompt at a time gives."""

import pytest
import torch
from engine_worker import ROWS, tiny_lm
from transformers import LlamaConfig, LlamaForCausalLM

from rlhf_core.config import GenerationConfig
from rlhf_core.eval.generate import generate


def tiny_llama(tok):
    torch.manual_seed(0)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            bos_token_id=tok.eos_token_id,
        )
    )


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_left_padded_generation_equals_one_prompt_at_a_time(arch):
    model, tok = tiny_lm()
    if arch == "llama":
        model = tiny_llama(tok)
    prompts = ROWS["prompt"].tolist()[:6]
    batched = generate(model, tok, prompts, GenerationConfig(max_new_tokens=8, batch_size=6))
    single = [generate(model, tok, [p], GenerationConfig(max_new_tokens=8, batch_size=1))[0] for p in prompts]
    assert batched == single
    assert all(batched)  # something was generated for every prompt
