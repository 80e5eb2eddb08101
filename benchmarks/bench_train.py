"""Training throughput: our engine vs TRL SFTTrainer, HF Trainer and TRL DPOTrainer on the same work.

Each comparison trains the same randomly initialised GPT-2 (a fresh copy per run) on the same rows
with the same global batch, precision, optimiser (AdamW, linear decay, clipping at 1.0) and number
of steps, in one process. Throughput is the median time between optimiser steps (a global hook on
``Optimizer.step``) after ``--warmup`` steps, so start-up, tokenisation and compilation are left out
on both sides; the sides take turns for ``--rounds`` rounds and each keeps its median, so bursts of
load from other processes on a shared machine hit every side alike. The loss check runs both
sides' losses on one identical batch before training.

    python benchmarks/bench_train.py                                  # CPU size, ~3-5 minutes
    python benchmarks/bench_train.py --size gpt2 --batch 16 --sft-len 1024 --dpo-len 512 \
        --precision bf16 --steps 30 --warmup 5                         # GPT-2-124M on a GPU (make gpu-check)

One line per comparison, ``<work>: ours vs <baseline> <ratio>x, max loss diff <d>``, with samples/s
and tokens/s of both sides; on CUDA also our MFU (6N + 12·L·H·T FLOPs per token over the GPU's
dense bf16 peak, ``--peak-tflops`` to override). SFT losses are compared as the mean NLL per
response token, TRL's and HF's definition (ours is that times tokens / sequences, docs/sources.md §6.2).
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlhf_core.config import ComputeConfig, PolicyConfig, TrainConfig  # noqa: E402
from rlhf_core.train.batching import collate, encode_pairs, token_logprobs  # noqa: E402
from rlhf_core.train.losses import dpo_loss  # noqa: E402
from rlhf_core.train.offline import train_dpo, train_offline  # noqa: E402

SIZES = {
    "tiny": dict(n_layer=2, n_head=4, n_embd=128),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),  # GPT-2-124M
}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
EOS = "<|endoftext|>"


def word_tokenizer(vocab_size: int):
    """One token per word (and per special), so prompt + completion always has a known length."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(vocab_size - 2)]
    vocab = {EOS: 0, "<|pad|>": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=EOS))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token="<|pad|>", unk_token=EOS), words


def texts(words: list[str], n: int, length: int, rng: random.Random, lead: str = "") -> list[str]:
    return [lead + " ".join(rng.choice(words) for _ in range(length)) for _ in range(n)]


def build_model(size: str, vocab: int, positions: int, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=positions,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **SIZES[size],
    )
    return GPT2LMHeadModel(config)


class StepClock:
    """Times of every optimiser step in the process (any optimiser: ours, TRL's or HF's)."""

    def __enter__(self):
        self.times: list[float] = []

        def hook(*_):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

        self.handle = register_optimizer_step_post_hook(hook)
        return self

    def __exit__(self, *_):
        self.handle.remove()

    def rate(self, warmup: int) -> float:
        """Optimiser steps per second after ``warmup`` steps: the inverse median step time, so a
        burst of load from another process on a shared machine does not decide the result."""
        return 1.0 / statistics.median(b - a for a, b in zip(self.times[warmup - 1 :], self.times[warmup:]))


def rates(runs: dict, args) -> dict[str, float]:
    """Sequences (or pairs) per second of each run: the sides take turns for ``--rounds`` rounds and
    each keeps its median, so load from other processes hits every side alike."""
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, train in runs.items():
            with StepClock() as clock:
                train()
            seen[name].append(clock.rate(args.warmup) * args.batch)
    return {name: statistics.median(values) for name, values in seen.items()}


def hf_args(out: str, args, **extra) -> dict:
    return dict(
        output_dir=out,
        per_device_train_batch_size=args.batch,
        max_steps=args.steps,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        bf16=args.precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        dataloader_drop_last=True,
        seed=0,
        disable_tqdm=True,
        **extra,
    )


def our_train(args) -> TrainConfig:
    return TrainConfig(epochs=1.0, batch_size=args.batch, lr=args.lr, max_grad_norm=1.0, checkpoint_every=10**9)


def compute(args) -> ComputeConfig:
    return ComputeConfig(precision=args.precision, compile=args.compile)


def token_mean_nll(model, tok, rows: pd.DataFrame, max_length: int) -> float:
    enc = encode_pairs(tok, rows["prompt"].tolist(), rows["completion"].tolist(), max_length)
    with torch.no_grad():
        logp, mask = token_logprobs(model, collate(enc.ids, enc.n_prompt, tok.pad_token_id))
    return float(-logp.sum() / mask.sum())


def report(work: str, baseline: str, ours: float, theirs: float, per_sample_tokens: int, diff: float) -> None:
    print(
        f"{work}: ours vs {baseline} {ours / theirs:.2f}x, max loss diff {diff:.1e}   "
        f"(samples/s {ours:.1f} vs {theirs:.1f}; tokens/s {ours * per_sample_tokens:.0f} vs "
        f"{theirs * per_sample_tokens:.0f})",
        flush=True,
    )


def print_mfu(model, sequences_per_s: float, seq_len: int, peak_tflops: float | None) -> None:
    """Our model FLOPs utilisation on CUDA (nothing on CPU, whose peak is not known)."""
    if not torch.cuda.is_available():
        return
    name = torch.cuda.get_device_name()
    peak = peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    if peak is None:
        print(f"  MFU: unknown peak for {name}; pass --peak-tflops")
        return
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    flops_per_token = 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * seq_len
    utilisation = flops_per_token * sequences_per_s * seq_len / (peak * 1e12)
    print(f"  ours: MFU {utilisation:.1%} of {peak:.0f} TFLOP/s ({name})")


def bench_sft(args, tok, words) -> None:
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(0)
    n = args.batch * args.steps
    prompt_len = args.sft_len // 4
    rows = pd.DataFrame(
        {
            "prompt": texts(words, n, prompt_len, rng),
            "completion": texts(words, n, args.sft_len - prompt_len - 1, rng, lead=" "),
        }
    )
    base = build_model(args.size, len(tok), args.sft_len, tok)
    first = rows.iloc[: args.batch]
    enc = encode_pairs(tok, rows["prompt"].tolist(), rows["completion"].tolist(), args.sft_len)
    labelled = Dataset.from_dict({"ids": enc.ids, "n_prompt": enc.n_prompt})

    def collate_labels(examples):
        batch = collate([e["ids"] for e in examples], [e["n_prompt"] for e in examples], tok.pad_token_id)
        labels = batch["input_ids"].masked_fill(~batch.pop("response_mask"), -100)
        return {**batch, "labels": labels}

    def trl_trainer(data, out):
        return SFTTrainer(
            model=copy.deepcopy(base),
            processing_class=tok,
            train_dataset=Dataset.from_pandas(data),
            args=SFTConfig(**hf_args(out, args), max_length=args.sft_len, completion_only_loss=True),
        )

    with tempfile.TemporaryDirectory() as tmp:
        ours_loss = token_mean_nll(base, tok, first, args.sft_len)
        probe = trl_trainer(first, f"{tmp}/probe")
        with torch.no_grad():
            trl_loss = probe.compute_loss(probe.model, next(iter(probe.get_train_dataloader()))).item()
            hf_loss = base(**collate_labels([labelled[i] for i in range(args.batch)])).loss.item()
        rate = rates(
            {
                "ours": lambda: train_offline(
                    copy.deepcopy(base),
                    tok,
                    rows,
                    "nll",
                    our_train(args),
                    Path(tempfile.mkdtemp(dir=tmp)),
                    compute=compute(args),
                ),
                "trl": lambda: trl_trainer(rows, f"{tmp}/trl").train(),
                "hf": lambda: Trainer(
                    model=copy.deepcopy(base),
                    train_dataset=labelled,
                    data_collator=collate_labels,
                    args=TrainingArguments(**hf_args(f"{tmp}/hf", args), remove_unused_columns=False),
                ).train(),
            },
            args,
        )
    report("sft", "TRL SFTTrainer", rate["ours"], rate["trl"], args.sft_len, abs(ours_loss - trl_loss))
    report("sft", "HF Trainer", rate["ours"], rate["hf"], args.sft_len, abs(ours_loss - hf_loss))
    print_mfu(base, rate["ours"], args.sft_len, args.peak_tflops)


def bench_dpo(args, tok, words) -> None:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rng = random.Random(1)
    n = args.batch * args.steps
    prompt_len = args.dpo_len // 2
    response_len = args.dpo_len - prompt_len - 1
    pairs = pd.DataFrame(
        {
            "prompt": texts(words, n, prompt_len, rng),
            "chosen": texts(words, n, response_len, rng, lead=" "),
            "rejected": texts(words, n, response_len, rng, lead=" "),
        }
    )
    base = build_model(args.size, len(tok), args.dpo_len, tok)
    reference = copy.deepcopy(base).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # a policy that already differs from its reference, so the loss is not log 2
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    policy_cfg = PolicyConfig(algorithms=["dpo"], data="-", pairs="-", train=our_train(args), dpo_beta=0.1)
    first = pairs.iloc[: args.batch]

    def seq_logp(model, column):
        enc = encode_pairs(tok, first["prompt"].tolist(), first[column].tolist(), args.dpo_len)
        with torch.no_grad():
            logp, _ = token_logprobs(model, collate(enc.ids, enc.n_prompt, tok.pad_token_id))
        return logp.sum(-1)

    def trl_trainer(data, reference, out):
        # TRL 1.16 loads a reference by the model's (empty) name unless it is given one.
        return DPOTrainer(
            model=copy.deepcopy(base),
            ref_model=copy.deepcopy(reference).eval(),
            processing_class=tok,
            train_dataset=Dataset.from_pandas(data),
            args=DPOConfig(**hf_args(out, args), max_length=None, beta=0.1),
        )

    with tempfile.TemporaryDirectory() as tmp:
        ours_loss = (
            dpo_loss(
                seq_logp(base, "chosen"),
                seq_logp(base, "rejected"),
                seq_logp(reference, "chosen"),
                seq_logp(reference, "rejected"),
                0.1,
            )
            .mean()
            .item()
        )
        probe = trl_trainer(first, reference, f"{tmp}/probe")
        with torch.no_grad():
            trl_loss = probe.compute_loss(probe.model, next(iter(probe.get_train_dataloader()))).item()
        # In training both sides start from the policy and use a frozen copy of it as the reference,
        # as the pipeline does.
        rate = rates(
            {
                "ours": lambda: train_dpo(
                    copy.deepcopy(base), tok, pairs, policy_cfg, Path(tempfile.mkdtemp(dir=tmp)), compute=compute(args)
                ),
                "trl": lambda: trl_trainer(pairs, base, f"{tmp}/trl").train(),
            },
            args,
        )
    report("dpo", "TRL DPOTrainer", rate["ours"], rate["trl"], 2 * args.dpo_len, abs(ours_loss - trl_loss))
    print_mfu(base, 2 * rate["ours"], args.dpo_len, args.peak_tflops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--vocab", type=int, default=None, help="default: 1000 (tiny) or 50257 (gpt2)")
    parser.add_argument("--batch", type=int, default=16, help="global batch: sequences (SFT) or pairs (DPO)")
    parser.add_argument("--sft-len", type=int, default=128)
    parser.add_argument("--dpo-len", type=int, default=64, help="tokens of prompt + response per sequence")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the timing")
    parser.add_argument("--rounds", type=int, default=3, help="turns each side takes; its median counts")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--precision", choices=["no", "bf16"], default="no")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile for our engine (default: on with CUDA)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--work", choices=["sft", "dpo", "all"], default="all")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")
    tok, words = word_tokenizer(args.vocab or (1000 if args.size == "tiny" else 50257))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU x{torch.get_num_threads()}"
    print(
        f"== {args.size} GPT-2, batch {args.batch}, SFT {args.sft_len} tokens, DPO {args.dpo_len} tokens per "
        f"sequence, precision {args.precision}, {args.steps} steps ({args.warmup} warm-up), {device}",
        flush=True,
    )
    if args.work in ("sft", "all"):
        bench_sft(args, tok, words)
    if args.work in ("dpo", "all"):
        bench_dpo(args, tok, words)


if __name__ == "__main__":
    main()
