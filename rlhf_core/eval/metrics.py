"""Reward-model metrics: pairwise accuracy and token NLL (the registered evaluation metrics: ``measures/``)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def pairwise_accuracy(score_a: np.ndarray, score_b: np.ndarray, truth_a: np.ndarray, truth_b: np.ndarray) -> float:
    """Share of pairs with distinct truth where the scores order them as the truth does."""
    keep = truth_a != truth_b
    if not keep.any():
        raise ValueError("no pair has distinct true scores; accuracy is undefined")
    return float(np.mean(np.sign(score_a[keep] - score_b[keep]) == np.sign(truth_a[keep] - truth_b[keep])))


def mean_token_nll(model, tok, rows: pd.DataFrame, max_length: int, batch_size: int = 64) -> float:
    """Mean negative log-likelihood per response token of ``prompt -> completion`` rows (+ EOS)."""
    import torch

    from rlhf_core.train.batching import collate, encode_pairs, token_logprobs

    enc = encode_pairs(tok, rows["prompt"].tolist(), rows["completion"].tolist(), max_length)
    total, count = 0.0, 0.0
    with torch.inference_mode():
        for s in range(0, len(enc.ids), batch_size):
            batch = collate(enc.ids[s : s + batch_size], enc.n_prompt[s : s + batch_size], tok.pad_token_id)
            logp, mask = token_logprobs(model, batch)
            total, count = total - float(logp.sum()), count + float(mask.sum())
    return total / count
