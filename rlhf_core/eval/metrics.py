"""Reward-model metrics: token NLL (the registered evaluation metrics are in ``measures/``)."""

from __future__ import annotations

import pandas as pd


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
