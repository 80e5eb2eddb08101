"""The PPO family's formulas as pure tensor functions (docs/sources.md §6.1, §6.8, §3.1).

All per-token tensors are response-only, shape (B, T), with ``mask`` (B, T) marking response
tokens (1 up to and including EOS, 0 after). Two exact semantics are kept apart because they
differ in small ways that change numbers:

- ``fine_grained`` ([FG] ``fgrlhf/ppo.py``): dense per-token rewards minus ``kl_coef * kl``;
  rewards whitened keeping the mean; GAE over the longest valid length only; advantages
  whitened; each minibatch's loss weighted by its share of valid length; one optimiser step per
  PPO epoch; stop once the rollout KL exceeds 10 on 5 occasions. Its ``whiten`` divides by
  ``sqrt(std + 1e-8)``, not ``sqrt(var + 1e-8)``: ``reduce_std`` is passed where the variance
  belongs. We keep that quirk (``fg_whiten``) because it is what the seed ran; docs/sources.md
  §6.1 writes the textbook form.
- ``legacy_step`` (TRL 0.7 ``PPOTrainer.step``): a scalar score on the last response token
  plus ``-beta * kl`` everywhere, optional running score normalisation/scaling and clipping,
  masked whitening with Bessel's correction, GAE over the whole padded width, the adaptive KL
  controller, value clipping, ``pg + vf_coef * vf`` with the ratio-threshold batch skip.

GRPO/RLOO group-relative advantages share the same clipped policy loss.

Read from the TRL v0.7.4 source, beyond the summary in docs/sources.md §6.8:
- ``use_score_norm`` acts only together with ``use_score_scaling``; the running moments are
  updated with the current batch *before* it is normalised; the scale is the running std (with
  Bessel's correction over the total count) plus float32 eps; ``score_clip`` applies afterwards.
- Whitening uses Bessel's correction. With ``whiten_rewards`` the zeroed padding is whitened too,
  becomes mean*(1 - 1/sigma), and GAE (over the full padded width) carries it into the last
  tokens of shorter rows; [FG] has the same leak up to the longest valid length. Kept as is.
- A minibatch whose mean ratio exceeds ``ratio_threshold`` (10) has its loss zeroed.
- The KL controller sees the rollout KL (per-token log-ratio summed, batch mean) with
  n_steps = batch size, after the PPO epochs, so a step's rewards use the previous beta.
- Old log-probs and values come from an eval-mode forward, the minibatch forward is in train
  mode (dropout), so the ratio is not 1 on the first minibatch (as in [FG]).
- Minibatches are reshuffled every epoch and the optimiser steps every ``grad_accum`` of them
  with each loss divided by ``grad_accum``; [FG] walks the rows in order, with no shuffle.
"""

from __future__ import annotations

import math

import numpy as np
import torch

WHITEN_EPS = 1e-8


# ----------------------------------------------------------------------------- masked statistics


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum()
    return (x * mask).sum(dim) / mask.sum(dim)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """Variance over valid entries; TRL 0.7 applies Bessel's correction n/(n-1)."""
    var = masked_mean((x - masked_mean(x, mask)) ** 2, mask)
    if unbiased:
        n = mask.sum()
        if n < 2:
            raise ValueError("whitening needs at least two valid tokens")
        var = var * n / (n - 1)
    return var


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """TRL 0.7 ``masked_whiten``: (x - mu) / sqrt(var_unbiased + 1e-8) [+ mu]."""
    mean, var = masked_mean(x, mask), masked_var(x, mask, unbiased=True)
    out = (x - mean) * torch.rsqrt(var + WHITEN_EPS)
    return out + mean if not shift_mean else out


def fg_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """[FG] ``whiten``: (x - mu) / sqrt(std_population + 1e-8) [+ mu] (the seed's quirk, see top)."""
    mean = masked_mean(x, mask)
    std = masked_var(x, mask, unbiased=False).sqrt()
    out = (x - mean) * torch.rsqrt(std + WHITEN_EPS)
    return out + mean if not shift_mean else out


# ----------------------------------------------------------------------------- rewards


def place_segment_rewards(
    positions: list[list[int]], rewards: list[list[float]], lengths: list[int], width: int
) -> torch.Tensor:
    """Dense reward tensor (B, width): each segment's reward on its last token, 0 elsewhere.

    ``positions[i][j]`` is the token index of the end of segment j of completion i; it is clipped
    to ``lengths[i] - 1`` as [FG] does, and rewards landing on the same token add up (R1+R2+R3).
    """
    out = torch.zeros(len(lengths), width)
    for i, (pos, rew, length) in enumerate(zip(positions, rewards, lengths)):
        if len(pos) != len(rew):
            raise ValueError(f"completion {i}: {len(pos)} segment positions but {len(rew)} rewards")
        for p, r in zip(pos, rew):
            out[i, min(p, length - 1)] += r
    return out


def last_token_rewards(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) with ``scores[i]`` on the last valid token of row i (TRL 0.7 ``compute_rewards``)."""
    out = torch.zeros_like(mask, dtype=scores.dtype)
    last = mask.sum(-1).long() - 1
    out[torch.arange(len(scores), device=mask.device), last] = scores
    return out


def fine_grained_rewards(
    raw: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """[FG] ``kl_penalize_reward``: r~_t = raw_t - kl_coef * (logp_t - ref_t); returns (r~, kl)."""
    kl = (logp - ref_logp) * mask
    return raw * mask - kl_coef * kl, kl


def legacy_rewards(
    scores: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """TRL 0.7: -kl_coef * (logp - ref) at every token, plus the score on the last response token.

    Returns (rewards, non_score_reward); like TRL, neither is masked here (GAE masks them).
    """
    non_score = -kl_coef * (logp - ref_logp)
    return non_score + last_token_rewards(scores, mask), non_score


class RunningMoments:
    """TRL 0.7 ``RunningMoments`` (one process): Chan's parallel update of the score mean/var."""

    def __init__(self):
        self.mean, self.var, self.std, self.count = 0.0, 1.0, 1.0, 1e-24

    def update(self, xs: torch.Tensor) -> None:
        xs = xs.double()
        n = xs.numel()
        xs_var, xs_mean = torch.var_mean(xs, unbiased=False)
        delta = float(xs_mean) - self.mean
        total = self.count + n
        old_sum = self.var * self.count + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var = (old_sum + float(xs_var) * n) / total
        self.std = math.sqrt(self.var * total / (total - 1))
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "std": self.std, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.std, self.count = (state[k] for k in ("mean", "var", "std", "count"))


def legacy_transform_scores(
    scores: torch.Tensor, running: RunningMoments, use_scaling: bool, use_norm: bool, clip: float | None
) -> torch.Tensor:
    """TRL 0.7 ``step``: update the running moments with this batch first, then scale (and centre
    only when ``use_norm`` *and* ``use_scaling``; norm alone does nothing), then clip to ±clip."""
    if use_scaling:
        running.update(scores)
        factor = running.std + torch.finfo(scores.dtype).eps
        scores = (scores - running.mean) / factor if use_norm else scores / factor
    if clip is not None:
        scores = scores.clamp(-clip, clip)
    return scores


class AdaptiveKLController:
    """Ziegler et al.: beta <- beta * (1 + clip(KL/target - 1, -0.2, 0.2) * n_steps / horizon)."""

    def __init__(self, init_kl_coef: float, target: float | None, horizon: float):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        if self.target is None:  # fixed coefficient
            return
        error = float(np.clip(current_kl / self.target - 1, -0.2, 0.2))
        self.value *= 1 + error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = state["value"]


# ----------------------------------------------------------------------------- advantages


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float, horizon: int) -> torch.Tensor:
    """A_t = delta_t + gamma*lam*A_{t+1}, delta_t = r_t + gamma*V_{t+1} - V_t, V_horizon = 0;
    computed for t < horizon, zero beyond."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    for t in reversed(range(horizon)):
        next_v = values[:, t + 1] if t + 1 < horizon else 0.0
        delta = rewards[:, t] + gamma * next_v - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    return adv


def fine_grained_advantages(
    penalized: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float, whiten_rewards: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """[FG] ``compute_advantages``: returns (whitened advantages, returns = A + V_old).

    GAE runs over the longest valid length only, so whitened padding beyond it never leaks in.
    """
    rewards = fg_whiten(penalized, mask, shift_mean=False) if whiten_rewards else penalized
    adv = gae(rewards, values, gamma, lam, int(mask.sum(-1).max()))
    return fg_whiten(adv, mask).detach(), adv + values


def legacy_advantages(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float, whiten_rewards: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TRL 0.7 ``compute_advantages``: returns (masked values, whitened advantages, returns)."""
    values, rewards = values * mask, rewards * mask
    if whiten_rewards:
        rewards = whiten(rewards, mask, shift_mean=False)
    adv = gae(rewards, values, gamma, lam, rewards.shape[1])
    return values, whiten(adv, mask).detach(), adv + values


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True) -> torch.Tensor:
    """GRPO: (r - group mean) / (group std + 1e-4), std with Bessel's correction (TRL GRPO)."""
    groups = rewards.view(-1, group_size)
    adv = groups - groups.mean(-1, keepdim=True)
    if scale:
        adv = adv / (groups.std(-1, keepdim=True) + 1e-4)
    return adv.reshape(-1)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO: r_i minus the mean reward of the other k-1 samples of the same prompt."""
    if group_size < 2:
        raise ValueError("RLOO needs at least two samples per prompt")
    groups = rewards.view(-1, group_size)
    others = (groups.sum(-1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


# ----------------------------------------------------------------------------- losses


def policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """masked_mean(max(-A*ratio, -A*clip(ratio, 1-eps, 1+eps))); returns (loss, ratio)."""
    ratio = torch.exp(logp - old_logp)
    losses = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip))
    return masked_mean(losses, mask), ratio


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float
) -> torch.Tensor:
    """0.5 * masked_mean(max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2))."""
    clipped = torch.max(torch.min(values, old_values + clip), old_values - clip)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)


def length_weight(minibatch_mask: torch.Tensor, rollout_mask: torch.Tensor) -> float:
    """[FG]: mean valid length of the minibatch over the mean valid length of the whole rollout."""
    return float(minibatch_mask.sum(-1).float().mean() / rollout_mask.sum(-1).float().mean())


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token unbiased KL estimate exp(ref - logp) - (ref - logp) - 1 (GRPO's KL term)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


class KLEarlyStop:
    """[FG]: stop once the rollout KL (token sum, batch mean) exceeded ``threshold`` ``patience`` times
    (cumulative, not consecutive)."""

    def __init__(self, threshold: float = 10.0, patience: int = 5):
        self.threshold, self.patience, self.count = threshold, patience, 0

    def update(self, batch_kl: float) -> bool:
        if batch_kl > self.threshold:
            self.count += 1
        return self.count >= self.patience
