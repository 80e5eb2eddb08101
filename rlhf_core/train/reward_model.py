"""Bradley-Terry reward model (docs/sources.md §5.2/§5.5): -log sigmoid(r_chosen - r_rejected) on one scalar head.

The input text is ``prompt + response`` with no EOS, and the score is read at the last non-pad
token (GPT-2 sequence classification), so padding never moves the score.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rlhf_core.config import ComputeConfig, TrainConfig
from rlhf_core.train.batching import collate, encode_pairs, to_device
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps
from rlhf_core.train.losses import bradley_terry_loss


def _scores(model, tokenizer, ids: list[list[int]]) -> torch.Tensor:
    batch = to_device(collate(ids, [0] * len(ids), tokenizer.pad_token_id), model)
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)


def train_bradley_terry(model, tokenizer, pairs: pd.DataFrame, train: TrainConfig, work_dir: Path,
                        compute: ComputeConfig | None = None) -> LoopResult:
    prompts = pairs["prompt"].tolist()
    chosen = encode_pairs(tokenizer, prompts, pairs["chosen"].tolist(), train.max_length, add_eos=False)
    rejected = encode_pairs(tokenizer, prompts, pairs["rejected"].tolist(), train.max_length, add_eos=False)
    order = BatchOrder(len(pairs), train.batch_size, train.seed)
    engine = Engine(model, train, total_steps(train, len(pairs)), compute)

    def step_fn(idx: torch.Tensor):
        scores = _scores(engine.model, tokenizer, [chosen.ids[i] for i in idx] + [rejected.ids[i] for i in idx])
        rc, rr = scores[: len(idx)], scores[len(idx):]
        return bradley_terry_loss(rc, rr).mean(), {"accuracy": float((rc > rr).float().mean())}

    return engine.run(order, step_fn, work_dir, "reward_model")


@torch.inference_mode()
def score(model, tokenizer, prompts: list[str], completions: list[str], max_length: int,
          batch_size: int = 64) -> np.ndarray:
    """Raw reward-model logits, one per (prompt, completion), in input order."""
    model.eval()
    enc = encode_pairs(tokenizer, prompts, completions, max_length, add_eos=False)
    order = np.argsort([len(x) for x in enc.ids], kind="stable")  # similar lengths share a batch
    out = np.empty(len(enc.ids), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = _scores(model, tokenizer, [enc.ids[i] for i in idx]).double().cpu().numpy()
    return out


def pairwise_accuracy(score_a: np.ndarray, score_b: np.ndarray, truth_a: np.ndarray, truth_b: np.ndarray) -> float:
    """Share of pairs with distinct truth where the scores order them as the truth does."""
    keep = truth_a != truth_b
    if not keep.any():
        raise ValueError("no pair has distinct true scores; accuracy is undefined")
    return float(np.mean(np.sign(score_a[keep] - score_b[keep]) == np.sign(truth_a[keep] - truth_b[keep])))
