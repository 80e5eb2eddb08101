"""Likelihood-based trainers on the shared engine: SFT/NLL, the A-LoL family, and DPO.

The reference model (the SFT checkpoint) is frozen; its log-probs are computed per batch under
``inference_mode`` (with LoRA it is the base with adapters off). Rows carry ``reward`` (R) and
``advantage`` (A = R - V_ref) when the algorithm needs them (docs/sources.md §6.2).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from rlhf_core.config import ComputeConfig, PolicyConfig, TrainConfig
from rlhf_core.train.batching import collate, encode_pairs, token_logprobs
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps
from rlhf_core.train.losses import NEEDS_ADVANTAGE, NEEDS_REFERENCE, OFFLINE_SETTINGS, dpo_loss, offline_loss
from rlhf_core.train.validation import Validation


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def reference_for(policy, needed: bool, compute: ComputeConfig | None):
    """A frozen copy of the policy, or None when none is needed or LoRA's disabled adapters serve."""
    return frozen_copy(policy) if needed and not (compute and compute.lora) else None


def train_offline(
    policy,
    tokenizer,
    rows: pd.DataFrame,
    algorithm: str,
    train: TrainConfig,
    work_dir: Path,
    policy_cfg: PolicyConfig | None = None,
    compute: ComputeConfig | None = None,
    desc: str | None = None,
    score: Callable[[Any], dict[str, float]] | None = None,
) -> LoopResult:
    """Train ``policy`` in place on prompt/completion rows with one offline algorithm (``desc``: the
    progress label, by default the algorithm's name; SFT, which trains with nll, says ``train``).

    With ``policy_cfg.validation``, ``score`` (the policy -> its reward columns' means on the val prompts)
    runs ``per_epoch`` times an epoch, whose steps shrink with priority sampling as the step count does."""
    enc = encode_pairs(tokenizer, rows["prompt"].tolist(), rows["completion"].tolist(), train.max_length)
    reward = torch.tensor(rows["reward"].to_numpy(), dtype=torch.float32) if "reward" in rows else None
    advantage = torch.tensor(rows["advantage"].to_numpy(), dtype=torch.float32) if "advantage" in rows else None
    if algorithm in NEEDS_ADVANTAGE and advantage is None:
        raise ValueError(f"{algorithm}: rows have no 'advantage' column")
    ref = reference_for(policy, algorithm in NEEDS_REFERENCE, compute)
    # Only the algorithm's own settings are read: the stage keys each algorithm on those alone.
    own = {k: getattr(policy_cfg, k) for k in OFFLINE_SETTINGS[algorithm]} if policy_cfg else {}
    eps, kl_beta = own.get("ppo_clip"), own.get("kl_beta", 0.0)

    weights, scale = None, 1.0
    if own.get("sampling") == "priority":
        # docs/sources.md §6.2: sample with replacement ~ max(A, 0) (A-LoL) or R (wbc, r_gold, r_lol);
        # A-LoL step counts shrink by the share of rows with positive advantage.
        weights = (advantage if algorithm in NEEDS_ADVANTAGE else reward).clamp(min=0)
        scale = float((weights > 0).float().mean()) if algorithm in NEEDS_ADVANTAGE else 1.0
    order = BatchOrder(len(rows), train.batch_size, train.seed, weights)
    engine = Engine(policy, train, total_steps(train, len(rows), scale), compute)
    validate = None
    if policy_cfg is not None and policy_cfg.validation is not None:
        if score is None:
            raise ValueError("policy.validation is set: the trainer needs the val prompts' scorer")
        epoch_steps = max(1, int(order.steps_per_epoch * scale))  # the seed's int(n_steps * (1 - ratio))
        validate = Validation(policy_cfg.validation.per_epoch, epoch_steps, score)
    ref = ref if ref is None else ref.to(engine.device)

    def step_fn(idx: torch.Tensor):
        batch = collate([enc.ids[i] for i in idx], [enc.n_prompt[i] for i in idx], tokenizer.pad_token_id)
        logp, mask = token_logprobs(engine.model, batch)
        ref_logp = None
        if algorithm in NEEDS_REFERENCE:
            with engine.reference():
                ref_logp, _ = token_logprobs(engine.unwrapped if ref is None else ref, batch)
            ref_logp = ref_logp.clone()
        losses = offline_loss(
            algorithm,
            logp,
            mask,
            reward=None if reward is None else reward[idx].to(logp.device),
            advantage=None if advantage is None else advantage[idx].to(logp.device),
            ref_logp=ref_logp,
            eps=eps,
            kl_beta=kl_beta,
        )
        return losses.mean(), {"nll_per_token": float(-(logp.detach().sum() / mask.sum()))}

    return engine.run(order, step_fn, work_dir, desc or algorithm, validate)


def train_dpo(
    policy,
    tokenizer,
    pairs: pd.DataFrame,
    policy_cfg: PolicyConfig,
    work_dir: Path,
    reference_free: bool = False,
    compute: ComputeConfig | None = None,
) -> LoopResult:
    """DPO (docs/sources.md §6.3): chosen/rejected = response + EOS, sequence log-probs summed over tokens."""
    train = policy_cfg.train
    prompts = pairs["prompt"].tolist()
    chosen = encode_pairs(tokenizer, prompts, pairs["chosen"].tolist(), train.max_length)
    rejected = encode_pairs(tokenizer, prompts, pairs["rejected"].tolist(), train.max_length)
    ref = reference_for(policy, not reference_free, compute)
    order = BatchOrder(len(pairs), train.batch_size, train.seed)
    engine = Engine(policy, train, total_steps(train, len(pairs)), compute)
    ref = ref if ref is None else ref.to(engine.device)

    def seq_logp(model, idx):
        ids = [chosen.ids[i] for i in idx] + [rejected.ids[i] for i in idx]
        n_p = [chosen.n_prompt[i] for i in idx] + [rejected.n_prompt[i] for i in idx]
        logp, _ = token_logprobs(model, collate(ids, n_p, tokenizer.pad_token_id))
        total = logp.sum(-1)
        return total[: len(idx)], total[len(idx) :]

    def step_fn(idx: torch.Tensor):
        pc, pr = seq_logp(engine.model, idx)
        rc = rr = None
        if not reference_free:
            with engine.reference():
                rc, rr = (t.clone() for t in seq_logp(engine.unwrapped if ref is None else ref, idx))
        losses = dpo_loss(pc, pr, rc, rr, policy_cfg.dpo_beta)
        margin = (pc - pr).detach() - (0 if rc is None else (rc - rr))
        return losses.mean(), {
            "reward_accuracy": float((margin > 0).float().mean()),
            "margin": float(policy_cfg.dpo_beta * margin.mean()),
        }

    return engine.run(order, step_fn, work_dir, "dpo")
