"""Per-example losses of the offline RL family (docs/sources.md §6.2-6.3) and the Bradley-Terry RM (§5.2, §5.5).

Inputs are per-token log-probs already masked to response tokens: ``logp`` and ``ref_logp``
of shape (B, T) with ``mask`` (B, T). ``sg`` is stop-gradient (``.detach()``). Each function
returns a (B,) tensor; the batch loss is its mean.

- nll:            NLL_th
- wbc:            R * NLL_th
- r_gold:         R * sum_t max(sg(p_t), u) * (-log p_t),          u = 0.1
- r_lol:          R * w * NLL_th,          w = clip(exp(sg(NLL_ref - NLL_th)), 1-eps, 1+eps)
- a_lol:          A+ * w * NLL_th,         A+ = max(A, 0)
  (both take the [LoL] ``--kl_beta`` option: + beta * (NLL_ref - NLL_th), which needs eps = 0)
- a_lol_ref_free: A+ * NLL_th
- a_lol_seq:      A+ * sum_t w_t * (-log p_t),  w_t = clip(exp(sg(log p_t - log ref_t)), 1-eps, 1+eps)
- a_lol_kl:       A+ * NLL_th + beta * (NLL_ref - NLL_th)
- dpo:            -log sigmoid(beta * [(lp_c - lp_r) - (ref_c - ref_r)]); reference-free drops ref.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The algorithm names live with the policy config, which checks them when a config loads.
from rlhf_core.config.rl import OFFLINE_ALGORITHMS, PREFERENCE_ALGORITHMS  # noqa: F401 (re-exported)

NEEDS_REFERENCE = {"r_lol", "a_lol", "a_lol_seq", "a_lol_kl", "dpo"}
NEEDS_ADVANTAGE = {"a_lol", "a_lol_ref_free", "a_lol_seq", "a_lol_kl"}
CLIPPED = {"r_lol", "a_lol", "a_lol_seq"}  # read eps (``policy.ppo_clip``)
WITH_KL = {"r_lol", "a_lol", "a_lol_kl"}  # read beta (``policy.kl_beta``)
# The ``policy`` settings each offline algorithm reads, and nothing else (its partition is keyed on
# these): its loss's eps and beta, and the row sampling every one of them trains with.
OFFLINE_SETTINGS = {
    name: ("sampling", *(["ppo_clip"] if name in CLIPPED else []), *(["kl_beta"] if name in WITH_KL else []))
    for name in OFFLINE_ALGORITHMS
}
R_GOLD_FLOOR = 0.1


def _clip(w: torch.Tensor, eps: float | None) -> torch.Tensor:
    return w if eps is None else w.clamp(1 - eps, 1 + eps)


def offline_loss(
    algorithm: str,
    logp: torch.Tensor,
    mask: torch.Tensor,
    reward: torch.Tensor | None = None,
    advantage: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
    eps: float | None = None,
    kl_beta: float = 0.0,
) -> torch.Tensor:
    """Per-example loss (B,) of one offline algorithm."""
    nll = -(logp * mask).sum(-1)
    if algorithm == "nll":
        return nll
    if algorithm == "wbc":
        return reward * nll
    if algorithm == "r_gold":
        weight = logp.detach().exp().clamp(min=R_GOLD_FLOOR)
        return reward * (weight * -logp * mask).sum(-1)
    if algorithm in NEEDS_REFERENCE and ref_logp is None:
        raise ValueError(f"{algorithm} needs reference log-probs")
    adv = None if advantage is None else advantage.clamp(min=0)
    if algorithm in NEEDS_ADVANTAGE and adv is None:
        raise ValueError(f"{algorithm} needs advantages")
    if algorithm in ("r_lol", "a_lol"):
        nll_ref = -(ref_logp * mask).sum(-1)
        if kl_beta and eps != 0:
            raise ValueError(f"{algorithm} with kl_beta > 0 needs ppo_clip 0, as the [LoL] code asserts")
        w = _clip(torch.exp((nll_ref - nll).detach()), eps)
        return (reward if algorithm == "r_lol" else adv) * w * nll + kl_beta * (nll_ref - nll)
    if algorithm == "a_lol_ref_free":
        return adv * nll
    if algorithm == "a_lol_seq":
        w_t = _clip(torch.exp((logp - ref_logp).detach()), eps)
        return adv * (w_t * -logp * mask).sum(-1)
    if algorithm == "a_lol_kl":
        nll_ref = -(ref_logp * mask).sum(-1)
        return adv * nll + kl_beta * (nll_ref - nll)
    raise ValueError(f"unknown offline algorithm {algorithm!r}; known: {OFFLINE_ALGORITHMS}")


def dpo_loss(
    chosen_logp: torch.Tensor,
    rejected_logp: torch.Tensor,
    ref_chosen_logp: torch.Tensor | None,
    ref_rejected_logp: torch.Tensor | None,
    beta: float,
) -> torch.Tensor:
    """Per-pair DPO loss from sequence log-probs (B,); reference-free when the refs are None."""
    margin = chosen_logp - rejected_logp
    if ref_chosen_logp is not None:
        margin = margin - (ref_chosen_logp - ref_rejected_logp)
    return -F.logsigmoid(beta * margin)


def bradley_terry_loss(chosen_score: torch.Tensor, rejected_score: torch.Tensor) -> torch.Tensor:
    """Per-pair -log sigmoid(r_c - r_r)."""
    return -F.logsigmoid(chosen_score - rejected_score)
