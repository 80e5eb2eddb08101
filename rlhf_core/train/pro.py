"""PRO, Preference Ranking Optimisation ([LoL] ``pro_qlora_llama_hh.py``, docs/sources.md §6.4).

Candidates of one prompt are ranked in data order (candidate 0 first, even when its reward is
lower). With s_i the length-normalised log-prob of candidate i and r_i its raw reward, stage k
of K-1 contributes

    T_neg_j = r_k - r_j (j > k),  T_pos = max_j T_neg_j
    l_k = log(1e-10 + exp(s_k T_pos) + sum_j exp(s_j T_neg_j)) - s_k T_pos

and the SFT term is sft_weight * (K-1)^2 * (-sum log p of the sft_index candidate), a summed NLL.

Deviation: the seed masks ``attention_mask[:-1]`` against labels shifted by one, which drops the
first response token and adds the position after the last one; we score exactly the response
tokens (EOS included).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from rlhf_core.config import ComputeConfig
from rlhf_core.config.rl import PROConfig
from rlhf_core.train.batching import collate, encode_pairs, token_logprobs
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps

PRO_EPS = 1e-10


def pro_loss(
    sum_logp: torch.Tensor, n_tokens: torch.Tensor, rewards: torch.Tensor, sft_index: torch.Tensor, sft_weight: float
) -> torch.Tensor:
    """Per-example PRO loss (B,) from (B, K) summed log-probs, token counts and raw rewards."""
    scores = sum_logp / n_tokens
    stages = scores.shape[1]
    loss = torch.zeros_like(scores[:, 0])
    for k in range(stages - 1):
        t_neg = rewards[:, k : k + 1] - rewards[:, k + 1 :]
        t_pos = t_neg.max(dim=1).values
        pos = scores[:, k] * t_pos
        loss = loss + torch.log(PRO_EPS + torch.exp(pos) + torch.exp(scores[:, k + 1 :] * t_neg).sum(1)) - pos
    sft_nll = -sum_logp.gather(1, sft_index.view(-1, 1)).squeeze(1)
    return loss + sft_weight * (stages - 1) ** 2 * sft_nll


def pair_rewards(pairs: pd.DataFrame) -> torch.Tensor:
    """(B, 2) raw rewards: ``chosen_reward`` / ``rejected_reward`` columns when the rows carry them,
    else the ranking alone (1 for chosen, 0 for rejected, so T = 1)."""
    if "chosen_reward" in pairs and "rejected_reward" in pairs:
        return torch.tensor(pairs[["chosen_reward", "rejected_reward"]].to_numpy(), dtype=torch.float32)
    return torch.tensor([[1.0, 0.0]]).expand(len(pairs), 2).clone()


def train_pro(
    policy, tokenizer, pairs: pd.DataFrame, cfg: PROConfig, work_dir: Path, compute: ComputeConfig | None = None
) -> LoopResult:
    """Train ``policy`` in place with 2-candidate PRO on prompt/chosen/rejected rows (chosen = sft)."""
    train = cfg.train
    prompts = pairs["prompt"].tolist()
    chosen = encode_pairs(tokenizer, prompts, pairs["chosen"].tolist(), train.max_length)
    rejected = encode_pairs(tokenizer, prompts, pairs["rejected"].tolist(), train.max_length)
    rewards = pair_rewards(pairs)
    order = BatchOrder(len(pairs), train.batch_size, train.seed)
    engine = Engine(policy, train, total_steps(train, len(pairs)), compute)

    def step_fn(idx: torch.Tensor):
        n = len(idx)
        ids = [chosen.ids[i] for i in idx] + [rejected.ids[i] for i in idx]
        n_p = [chosen.n_prompt[i] for i in idx] + [rejected.n_prompt[i] for i in idx]
        logp, mask = token_logprobs(engine.model, collate(ids, n_p, tokenizer.pad_token_id))
        sums, counts = logp.sum(-1), mask.sum(-1)
        sum_logp = torch.stack([sums[:n], sums[n:]], dim=1)
        n_tokens = torch.stack([counts[:n], counts[n:]], dim=1)
        losses = pro_loss(
            sum_logp,
            n_tokens,
            rewards[idx].to(sum_logp.device),
            torch.zeros(n, dtype=torch.long, device=sum_logp.device),
            cfg.sft_weight,
        )
        scores = (sum_logp / n_tokens).detach()
        return losses.mean(), {"rank_accuracy": float((scores[:, 0] > scores[:, 1]).float().mean())}

    return engine.run(order, step_fn, work_dir, "pro")
