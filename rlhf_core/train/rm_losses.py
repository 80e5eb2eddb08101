"""The exact training loss of every reward-model kind the seeds train, as pure functions of scores or logits.

Each function takes the model outputs (never the model) and returns the scalar batch loss, so
a trainer on any engine can call it and the arithmetic is tested on its own.

- ``bradley_terry``           [WA], [RF] BT (docs/sources.md §5.4, §5.5)
- ``fg_sequence_preference``  [FG] holistic and R3 (§5.2)
- ``token_classification``    [FG] R1 and R2 (§5.1)
- ``crs_ranking``             [CRS] K-wise ranking RM (§5.3)
- ``crs_absolute``            [CRS] absolute (regression) RM (§5.3), with ``crs_low_score_weight``
- ``pairwise_preference``     [RF] pair-PM (§5.6), scored by ``pair_pm_probability``
- ``armo_pair_loss``          [RF] ArmoRM stage 2 (§5.7)

No seed trains with a Bradley-Terry margin (TRL's optional ``margin`` column is unused by [WA]
and [RF]), so none is offered here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rlhf_core.train.losses import bradley_terry_loss

IGNORE_INDEX = -100  # label of positions that are never a target (HF convention, [FG] `Ignore`)
CRS_BETA = 0.001  # [CRS] weight of the score-magnitude regulariser in the ranking loss
CRS_LOW_SCORE = 0.4  # [CRS] scores at or below this are "low" (up-weighted, and a separate eval bin)
CRS_LOW_WEIGHT_FACTOR = 0.75


def bradley_terry(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """``−mean log σ(r_chosen − r_rejected)`` over pairs (docs/sources.md §5.4, §5.5)."""
    return bradley_terry_loss(chosen, rejected).mean()


def fg_sequence_preference(preferred: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """[FG] holistic / R3 loss ``−mean log σ(s_preferred − s_other)`` (docs/sources.md §5.2).

    The same arithmetic as Bradley-Terry; kept as its own kind because the [FG] files state the
    preference as (preferred, other) with label 1 and the RM is selected by a different metric.
    """
    return bradley_terry(preferred, other)


def token_classification(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[FG] R1/R2 cross-entropy over labelled positions (docs/sources.md §5.1).

    ``logits`` (B, T, C), ``labels`` (B, T) with ``IGNORE_INDEX`` where a position is not a target
    (every word but the ``</s>`` segment markers, sub-tokens after a word's first, ``Ignore`` tags).
    The mean is over labelled positions of the whole batch, as HF token classifiers compute it.
    """
    if not (labels != IGNORE_INDEX).any():
        raise ValueError("token_classification: no labelled position in the batch; the loss is undefined")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def crs_ranking(scores: torch.Tensor, cu_lengths: Sequence[int], beta: float = CRS_BETA) -> torch.Tensor:
    """[CRS] K-wise ranking loss, the OpenAssistant ``RMLoss`` (docs/sources.md §5.3).

    ``scores`` (N,) holds every conversation's replies back to back, each conversation's best
    first; conversation c is ``scores[cu_lengths[c]:cu_lengths[c + 1]]``. Per conversation, over all
    pairs i < j in rank order::

        ℓ = mean_{i<j} [ −log σ(r_i − r_j) + β · ½ (r_i² + r_j²) ]

    and the batch loss is the mean over conversations (each weighs the same whatever its K).
    """
    bounds = list(cu_lengths)
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != scores.shape[0]:
        raise ValueError(f"crs_ranking: cu_lengths must run from 0 to {scores.shape[0]}, got {bounds}")
    losses = []
    for c, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        if end - start < 2:
            raise ValueError(f"crs_ranking: conversation {c} has {end - start} replies; a ranking needs 2")
        better, worse = torch.combinations(torch.arange(start, end, device=scores.device), 2).unbind(-1)
        ri, rj = scores[better], scores[worse]
        losses.append((-F.logsigmoid(ri - rj) + beta * 0.5 * (ri**2 + rj**2)).mean())
    return torch.stack(losses).mean()


def crs_low_score_weight(train_scores: torch.Tensor, threshold: float = CRS_LOW_SCORE) -> float:
    """[CRS] weight of a low-score row: ``0.75 · N_train / N_{y ≤ 0.4}`` (docs/sources.md §5.3).

    ``train_scores`` are the targets of the whole training set, augmented rows included.
    """
    n_low = int((train_scores <= threshold).sum())
    if n_low == 0:
        raise ValueError(f"crs_low_score_weight: no training score is <= {threshold}; the weight is undefined")
    return CRS_LOW_WEIGHT_FACTOR * train_scores.numel() / n_low


def crs_absolute(
    logits: torch.Tensor, targets: torch.Tensor, low_weight: float, threshold: float = CRS_LOW_SCORE
) -> torch.Tensor:
    """[CRS] absolute-RM loss ``mean_i w_i (σ(logit_i) − y_i)²`` (docs/sources.md §5.3).

    ``w_i = low_weight`` (from ``crs_low_score_weight`` on the training set) when ``y_i ≤ threshold``,
    else 1. The seed's inactive "penalty" branch (only without the sigmoid) is not ported.
    """
    weights = torch.where(targets <= threshold, torch.as_tensor(low_weight, dtype=logits.dtype), 1.0)
    return (weights * (torch.sigmoid(logits) - targets) ** 2).mean()


def pairwise_preference(label_logits: torch.Tensor, label_ids: torch.Tensor) -> torch.Tensor:
    """[RF] pair-PM loss: the causal-LM loss on the label token only (docs/sources.md §5.6).

    ``label_logits`` (B, V) are the LM logits at the position that predicts the assistant's answer,
    ``label_ids`` (B,) the token id of that answer (``A`` or ``B``); every other token of the
    ``[CONTEXT] … [RESPONSE A] … [RESPONSE B] …`` prompt carries no loss (``train_on_inputs: false``).
    The loss is the full-vocabulary cross-entropy, as in SFT. Whether the seed's chat template also
    trains the end-of-turn token after the label is unverified; here only the label is a target.
    """
    return F.cross_entropy(label_logits, label_ids)


def pair_pm_probability(logits_ab: torch.Tensor, logits_ba: torch.Tensor, a_id: int, b_id: int) -> torch.Tensor:
    """[RF] pair-PM score: P(the first response is preferred), averaged over both orders (§5.6, §7.5).

    ``logits_ab`` (B, V): label-position logits with the first response shown as A; ``logits_ba``
    with it shown as B. In each order the probability is a softmax over the two label tokens only,
    so the score is ``½ (P(A | first as A) + P(B | first as B))``.
    """
    p_ab = torch.softmax(logits_ab[:, [a_id, b_id]], dim=-1)[:, 0]
    p_ba = torch.softmax(logits_ba[:, [a_id, b_id]], dim=-1)[:, 1]
    return 0.5 * (p_ab + p_ba)


def armo_pair_loss(pred_chosen: torch.Tensor, pred_rejected: torch.Tensor) -> torch.Tensor:
    """[RF] ArmoRM stage 2: ``BCEWithLogits(pred_c − pred_r, 1)``, averaged over pairs (docs/sources.md §5.7).

    ``pred`` is the gated reward ``Σ_k r_k g_k`` of each response.
    """
    diff = pred_chosen - pred_rejected
    return F.binary_cross_entropy_with_logits(diff, torch.ones_like(diff))
