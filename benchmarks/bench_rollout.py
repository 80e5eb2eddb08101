"""Rollout sampling: our KV-cache decode loop (rlhf_core.train.sampler) vs HF ``generate``.

Both sample from the same randomly initialised GPT-2-style policy, the same left-padded prompt
batch, the same lengths and sampling settings, from the same seed. The script checks that the
tokens are identical, then times each (best of ``--repeats``) and prints

    rollout: ours vs HF generate <ratio>x

where ratio = HF seconds / our seconds (above 1 means ours is faster), the median over rounds that
time both back to back; the JSON line also gives each one's best time and tokens/s.

    python benchmarks/bench_rollout.py                     # the demo policy at batch 64, CPU
    python benchmarks/bench_rollout.py --threads 2
    python benchmarks/bench_rollout.py --size gpt2 --prompt-len 128 --new-tokens 128 --device cuda

On CPU about 80% of a step is the model's forward pass, which both loops share, so the gain is
bounded by the per-step overhead ``generate`` adds; on a GPU that overhead dominates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rlhf_core.train.sampler import SamplingSettings, sample

SIZES = {
    "demo": dict(n_layer=2, n_head=4, n_embd=128, vocab_size=600),  # the demo's policy
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50257),
}
EOS, PAD = 0, 1


def build(size: str, n_positions: int, device: str) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = GPT2Config(n_positions=n_positions, eos_token_id=EOS, pad_token_id=PAD, bos_token_id=EOS, **SIZES[size])
    return GPT2LMHeadModel(cfg).to(device).eval()


def prompts(batch: int, max_len: int, vocab: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded random prompts of lengths between max_len/2 and max_len."""
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(max_len // 2, max_len + 1, (batch,), generator=gen)
    ids = torch.full((batch, max_len), PAD, dtype=torch.long)
    mask = torch.zeros(batch, max_len, dtype=torch.long)
    for i, n in enumerate(lengths.tolist()):
        ids[i, max_len - n :] = torch.randint(2, vocab, (n,), generator=gen)
        mask[i, max_len - n :] = 1
    return ids.to(device), mask.to(device)


def timed_pair(fns, repeats: int, device: str) -> tuple[list[list[float]], list[torch.Tensor]]:
    """Wall times of each function over ``repeats`` rounds, interleaved so that load from other
    processes falls on both alike; every call starts from the same seed."""
    times, outs = [[] for _ in fns], [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            torch.manual_seed(123)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            outs[i] = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[i].append(time.perf_counter() - start)
    return times, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=SIZES, default="demo")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps the default")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build(args.size, args.prompt_len + args.new_tokens, args.device)
    ids, mask = prompts(args.batch, args.prompt_len, model.config.vocab_size, args.device)
    settings = SamplingSettings(args.new_tokens, True, args.temperature, args.top_k, args.top_p)

    def hf():
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, eos_token_id=EOS, pad_token_id=PAD, **settings.hf_kwargs()
            )
        return out[:, ids.shape[1] :]

    def ours():
        return sample(model, ids, mask, settings, EOS, PAD)

    hf(), ours()  # warm-up
    (hf_times, our_times), (hf_tokens, our_tokens) = timed_pair([hf, ours], args.repeats, args.device)
    t_hf, t_ours = min(hf_times), min(our_times)
    # the median of the per-round ratios resists load that changes between rounds
    ratio = statistics.median(h / o for h, o in zip(hf_times, our_times))
    identical = torch.equal(hf_tokens, our_tokens)
    new_tokens = int(our_tokens.numel())
    print(
        json.dumps(
            {
                "size": args.size,
                "batch": args.batch,
                "prompt_len": args.prompt_len,
                "new_tokens": args.new_tokens,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "hf_s": round(t_hf, 4),
                "ours_s": round(t_ours, 4),
                "hf_tokens_per_s": round(new_tokens / t_hf, 1),
                "ours_tokens_per_s": round(new_tokens / t_ours, 1),
                "identical_tokens": identical,
            }
        )
    )
    print(f"rollout: ours vs HF generate {ratio:.2f}x")
    if not identical:
        raise SystemExit("tokens differ from HF generate")


if __name__ == "__main__":
    main()
