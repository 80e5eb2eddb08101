"""A-LoL reference value V_ref(x) (docs/sources.md §6.2): attention pooling over the reference's prompt states.

dropout -> MultiheadAttention(query = one learned vector, keys/values = last-layer hidden states of
the prompt) -> dropout -> Linear(h, 1) -> sigmoid * max_value, fitted by MSE to the task reward of
the reference policy's own responses on the validation prompts; the epoch with the lowest mean
training MSE is kept. Deviation: we pass a key-padding mask, so left padding is not attended
(the seed attends it, docs/sources.md §10.4).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from rlhf_core.config import ReferenceValueConfig, TrainConfig
from rlhf_core.train.batching import to_device
from rlhf_core.train.loop import Engine


class ValueHeadAttention(nn.Module):
    def __init__(self, hidden: int, num_heads: int, dropout: float, max_value: float):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, hidden))
        self.attn = nn.MultiheadAttention(hidden, num_heads, batch_first=True)
        self.drop_in, self.drop_out = nn.Dropout(dropout), nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)
        self.max_value = max_value

    def forward(self, states: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """states (B, T, H), pad_mask (B, T) True at padding -> values (B,)."""
        states = self.drop_in(states)
        pooled, _ = self.attn(self.query.expand(len(states), -1, -1), states, states, key_padding_mask=pad_mask)
        return torch.sigmoid(self.out(self.drop_out(pooled[:, 0]))).squeeze(-1) * self.max_value


@torch.inference_mode()
def prompt_states(model, tokenizer, prompts: list[str], batch_size: int = 64) -> list[torch.Tensor]:
    """Last-layer hidden states over each prompt's tokens, one (T_i, H) tensor per prompt."""
    model.eval()
    out = []
    for start in range(0, len(prompts), batch_size):
        enc = tokenizer(
            prompts[start : start + batch_size],
            add_special_tokens=False,
            padding=True,
            return_tensors="pt",
            padding_side="left",
        )
        hidden = model(**to_device(dict(enc), model), output_hidden_states=True).hidden_states[-1].float().cpu()
        out += [h[m.bool()].clone() for h, m in zip(hidden, enc["attention_mask"])]
    return out


def _pad(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in states)
    batch = torch.zeros(len(states), width, states[0].shape[-1])
    pad = torch.ones(len(states), width, dtype=torch.bool)
    for i, s in enumerate(states):  # left padding, as the reference sees prompts
        batch[i, width - len(s) :] = s
        pad[i, width - len(s) :] = False
    return batch, pad


def fit_value_head(
    states: list[torch.Tensor], targets: np.ndarray, cfg: ReferenceValueConfig, seed: int
) -> tuple[ValueHeadAttention, list[float]]:
    """Train by MSE; return the best epoch's head and the per-epoch mean training MSE.

    The training engine takes one optimiser step per minibatch: AdamW with torch's default decay
    (0.01), a constant rate, no clipping ([LoL]'s settings); the head is as wide as the policy (H x H
    attention weights), so it goes where the engine trains."""
    torch.manual_seed(seed)
    head = ValueHeadAttention(states[0].shape[-1], cfg.num_heads, cfg.dropout, cfg.max_value)
    steps = cfg.epochs * math.ceil(len(states) / cfg.batch_size)
    train = TrainConfig(
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=1e-2,
        lr_schedule="constant",
        max_grad_norm=math.inf,
        seed=seed,
    )
    engine = Engine(head, train, steps)
    head, device = engine.unwrapped, engine.device
    y = torch.tensor(targets, dtype=torch.float32, device=device)
    best, best_mse, curve = copy.deepcopy(head.state_dict()), float("inf"), []
    gen = torch.Generator().manual_seed(seed)

    def mse(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x, pad = _pad([states[i] for i in idx])
        return nn.functional.mse_loss(engine.model(x.to(device), pad.to(device)), y[idx.to(device)]), {}

    for _ in range(cfg.epochs):
        head.train()
        losses = []
        for idx in torch.randperm(len(states), generator=gen).split(cfg.batch_size):
            done, _ = engine.step([idx], mse, [1.0])
            losses.append(done[0]["loss"] * len(idx))
        curve.append(sum(losses) / len(states))
        if curve[-1] < best_mse:
            best, best_mse = copy.deepcopy(head.state_dict()), curve[-1]
    head.load_state_dict(best)
    return head.eval(), curve


@torch.inference_mode()
def predict_values(head: ValueHeadAttention, states: list[torch.Tensor], batch_size: int = 256) -> np.ndarray:
    head.eval()
    device = next(head.parameters()).device
    out = [head(*(t.to(device) for t in _pad(states[i : i + batch_size]))) for i in range(0, len(states), batch_size)]
    return torch.cat(out).double().cpu().numpy()
