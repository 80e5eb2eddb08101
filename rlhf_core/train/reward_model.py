"""Bradley-Terry reward model (docs/sources.md §5.2/§5.5): -log sigmoid(r_chosen - r_rejected) on one scalar head.

The input text is ``prompt + response`` with no EOS, and the score is read at the last non-pad
token (GPT-2 sequence classification), so padding never moves the score.
"""
from __future__ import annotations

from pathlib import Path

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
