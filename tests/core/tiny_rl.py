"""A tiny GPT-2 policy and its tokenizer, built in code for the online-RL and PRO tests."""

import contextlib

import torch

from rlhf_core.config import TinyGPTConfig
from rlhf_core.models.load import build_causal_lm, train_tokenizer

WORDS = "good bad nice awful happy sad the a cat dog sat ran on mat fast slow very".split()
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4


@contextlib.contextmanager
def one_thread():
    """Tiny models run fastest on one thread (and far faster than two on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_policy(seed: int = 0, n_embd: int = 32, n_layer: int = 1, dropout: float = 0.0):
    tok = train_tokenizer(CORPUS, vocab_size=300, min_frequency=1)
    model = build_causal_lm(
        TinyGPTConfig(n_layer=n_layer, n_head=2, n_embd=n_embd, n_positions=96, dropout=dropout), tok, seed
    )
    return model, tok


def tiny_t5(seed: int = 0):
    """A tiny T5 policy (the [FG] architecture) on the same tokenizer."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = train_tokenizer(CORPUS, vocab_size=300, min_frequency=1)
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_heads=2,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    return T5ForConditionalGeneration(cfg), tok


def letter_share(prompts: list[str], completions: list[str]) -> list[float]:
    """Toy holistic reward: the share of a completion's characters that are lowercase letters."""
    return [sum(c.isalpha() and c.islower() for c in t) / max(len(t), 1) for t in completions]


def letter_segments(prompts: list[str], completions: list[str]) -> list[list[tuple[int, float]]]:
    """Toy dense reward: one segment per whitespace-separated word, worth 0.3 x its letter share."""
    out = []
    for text in completions:
        segs, pos = [], 0
        for word in text.split():
            pos = text.index(word, pos) + len(word)
            segs.append((pos, 0.3 * letter_share([], [word])[0]))
        out.append(segs)
    return out


PROMPTS = ["the cat", "a dog", "the mat", "very good", "sad cat", "on the"]


def toy_ppo_config(**overrides):
    from rlhf_core.config.rl import PPOConfig

    base = dict(
        semantics="legacy_step",
        steps=3,
        prompts_per_rollout=8,
        mini_batch_size=4,
        ppo_epochs=2,
        lr=1e-2,
        max_new_tokens=8,
        kl_coef=0.05,
    )
    return PPOConfig(**{**base, **overrides})


if __name__ == "__main__":  # a toy PPO run for the kill-and-resume test: tiny_rl.py WORK_DIR OUT KILL_AT
    import json
    import os
    import signal
    import sys
    from pathlib import Path

    from rlhf_core.train import ppo_math
    from rlhf_core.train.ppo import train_ppo

    torch.set_num_threads(1)
    work, out, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    calls, original = [0], ppo_math.policy_loss

    def counting_policy_loss(*args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    ppo_math.policy_loss = counting_policy_loss
    policy, tok = tiny_policy(seed=0, dropout=0.1)
    result = train_ppo(policy, tok, PROMPTS, letter_share, toy_ppo_config(lr_schedule="linear", warmup_steps=2), work)
    torch.save({k: v.clone() for k, v in policy.state_dict().items()}, out)
    keep = ("step", "reward", "kl", "kl_coef", "loss", "loss_policy", "loss_value")
    print(
        json.dumps({"resumed_from": result.resumed_from, "history": [{k: h[k] for k in keep} for h in result.history]})
    )
