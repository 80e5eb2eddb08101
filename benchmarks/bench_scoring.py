"""Reward-model scoring: the stock HF pipeline and one forward per text (the source repos' loops)
vs length-bucketed batches.

All three score the same texts with the same randomly initialised RoBERTa classifier, loaded
from a local directory through the ``fluency`` scorer's code path; the script prints texts/s and
tokens/s for each, the ratios and the largest score difference between them (a correctness check).

    python benchmarks/bench_scoring.py                               # CPU size, ~1-2 minutes
    python benchmarks/bench_scoring.py --threads 1                   # the compute-bound CPU case
    python benchmarks/bench_scoring.py --size large --texts 2048     # RoBERTa-large shapes, for a GPU

Where the gain comes from: one forward per text pays per-call overhead (Python, kernel launches,
thread synchronisation) for little work. On a GPU that overhead is nearly all of the time; on a
single CPU thread a 250-token forward is already GEMM-bound, so batching gains little there.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

import numpy as np
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizer

from rlhf_core.rewards.classifiers import FluencyScorer

SIZES = {
    # 4-layer, 256-wide: small enough for a 2-core CPU run of a few hundred texts.
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
WORDS = (
    "the a of to and in is was for on that with as by at from it his her they this an be "
    "river stone market quietly argued seventeen lantern copper orbit whistle harbor"
).split()


def make_corpus(n: int, min_tokens: int, max_tokens: int, seed: int) -> list[str]:
    """``n`` word strings whose lengths are spread uniformly over the token range (approximately)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(min_tokens, max_tokens))) for _ in range(n)]


def build_model_dir(size: str, out: str, corpus: list[str], seed: int) -> None:
    """Train a byte-level BPE on the corpus and save it beside a random RoBERTa classifier."""
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus,
        vocab_size=1000,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    tokenizer = RobertaTokenizer(vocab=state["vocab"], merges=merges)
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,
        type_vocab_size=1,
        num_labels=2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **SIZES[size],
    )
    RobertaForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def score_one_by_one(scorer: FluencyScorer, texts: list[str]) -> list[float]:
    """The source repos' loop: tokenise one text, run one forward, read P(LABEL_1)."""
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = scorer.tokenizer(text, return_tensors="pt", truncation=True, max_length=512).to(scorer.device)
            out.append(torch.softmax(scorer.model(**enc).logits.float(), dim=-1)[0, 1].item())
    return out


def score_with_pipeline(scorer: FluencyScorer, texts: list[str]) -> list[float]:
    """The stock call of the [LoL] fluency reward: a text-classification pipeline, one text per forward."""
    from transformers import pipeline

    pipe = pipeline("text-classification", model=scorer.model, tokenizer=scorer.tokenizer, device=scorer.device)
    with torch.inference_mode():
        out = pipe(texts, truncation=True, max_length=512, top_k=None)
    return [next(d["score"] for d in row if d["label"] == "LABEL_1") for row in out]


def timed(fn, *args) -> tuple[list[float], float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--texts", type=int, default=384)
    parser.add_argument("--min-tokens", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=510)
    parser.add_argument("--max-batch-tokens", type=int, default=None, help="default: the scorer's")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    texts = make_corpus(args.texts, args.min_tokens, args.max_tokens, args.seed)
    with tempfile.TemporaryDirectory() as model_dir:
        build_model_dir(args.size, model_dir, texts, args.seed)
        scorer = FluencyScorer(
            model=model_dir, device=args.device, max_batch_tokens=args.max_batch_tokens, progress=False
        )
    lengths = np.array([len(ids) for ids in scorer.tokenizer(texts)["input_ids"]])
    print(
        f"{args.size} RoBERTa classifier ({scorer.model.num_parameters() / 1e6:.1f}M params, "
        f"{scorer.model.dtype}) on {scorer.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"{len(texts)} texts, tokens min {lengths.min()} / mean {lengths.mean():.0f} / max {lengths.max()}")

    warm = texts[:4]  # first-call costs (allocator, kernels) are not what is compared
    score_one_by_one(scorer, warm)
    scorer(warm, warm)
    score_with_pipeline(scorer, warm)
    stock, t_stock = timed(score_with_pipeline, scorer, texts)
    naive, t_naive = timed(score_one_by_one, scorer, texts)
    batched, t_batched = timed(lambda: scorer(texts, texts))
    tokens = lengths.sum()
    for label, seconds in (
        ("HF pipeline, batch 1    ", t_stock),
        ("one forward per text    ", t_naive),
        ("length-bucketed batches ", t_batched),
    ):
        print(f"{label}: {len(texts) / seconds:8.1f} texts/s {tokens / seconds:9.0f} tokens/s ({seconds:.1f} s)")
    diff = max(float(np.max(np.abs(np.array(other) - np.array(batched)))) for other in (naive, stock))
    print(f"budget {scorer.max_batch_tokens} padded tokens per batch; max |score difference| {diff:.2e}")
    print(f"speed-up vs HF pipeline {t_stock / t_batched:.1f}x, vs one forward per text {t_naive / t_batched:.1f}x")


if __name__ == "__main__":
    main()
