"""The seeds' reward-model metrics, plus agreement with a gold score, as pure functions of scores.

- ``pair_accuracy``         held-out pairs, [FG] §5.2 / [RF] §5.5: share with ``r_chosen > r_rejected``
- ``ranking_metrics``       [CRS] ranking RM §5.3: first-vs-last accuracy and mean scores
- ``absolute_metrics``      [CRS] absolute RM §5.3: MSE / MAE overall and in the low / high bins
- ``token_error_metrics``   [FG] R1/R2 §5.1: error / no-error P/R/F1 and accuracy;
  ``token_error_baselines`` the all-error and all-no-error baselines; ``labelled_tags`` turns
  token-classifier logits into the tags they are computed on
- ``spearman`` and ``gold_pair_accuracy``: how well any RM's scores agree with a gold judge
- ``gating_coefficients``, ``linear_effects`` and ``weight_agreement``: [RF] ArmoRM §5.7, how the
  weight it puts on each objective compares with the weights a gold judge combines them with

Section numbers refer to docs/sources.md. Inputs are 1-D array-likes; a metric that has nothing
to average raises rather than returning a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from rlhf_core.eval.reward_bench import pairwise_correct

CRS_LOW_SCORE = 0.4  # [CRS] eval splits absolute targets at y <= 0.4 vs y > 0.4


def _array(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty; the metric is undefined")
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"length mismatch: {lengths}")


def pair_accuracy(chosen, rejected) -> float:
    """Share of pairs with ``r_chosen > r_rejected``; a tie counts as wrong, as in [FG] and [RF]."""
    c, r = _array(chosen, "chosen"), _array(rejected, "rejected")
    _same_length(chosen=c, rejected=r)
    return float(np.mean(c > r))


def ranking_metrics(scores, cu_lengths: Sequence[int]) -> dict[str, float]:
    """[CRS] eval of K-wise rankings: per conversation the first (best) reply is ``pos`` and the last
    (worst) is ``neg``; ``accuracy`` is the share with pos > neg, plus the mean pos and neg scores and
    their mean difference. ``cu_lengths`` bounds conversations as in ``rm_losses.crs_ranking``."""
    s = _array(scores, "scores")
    bounds = list(cu_lengths)
    if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != len(s) or any(b - a < 2 for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"cu_lengths must run from 0 to {len(s)} with at least 2 replies each, got {bounds}")
    pos, neg = s[bounds[:-1]], s[[b - 1 for b in bounds[1:]]]
    return {
        "accuracy": float(np.mean(pos > neg)),
        "pos_score": float(pos.mean()),
        "neg_score": float(neg.mean()),
        "score_diff": float(np.mean(pos - neg)),
    }


def absolute_metrics(predictions, targets, threshold: float = CRS_LOW_SCORE) -> dict[str, float]:
    """[CRS] absolute-RM eval: MSE and MAE of ``predictions`` (already through the sigmoid) against
    ``targets``, overall and for ``y <= threshold`` (``_low``) and ``y > threshold`` (``_high``).
    An empty bin reports NaN errors and ``n_<bin> = 0``."""
    p, y = _array(predictions, "predictions"), _array(targets, "targets")
    _same_length(predictions=p, targets=y)
    out: dict[str, float] = {}
    for suffix, keep in (("", np.ones_like(y, dtype=bool)), ("_low", y <= threshold), ("_high", y > threshold)):
        err = p[keep] - y[keep]
        out[f"mse{suffix}"] = float(np.mean(err**2)) if keep.any() else float("nan")
        out[f"mae{suffix}"] = float(np.mean(np.abs(err))) if keep.any() else float("nan")
        out[f"n{suffix or '_all'}"] = int(keep.sum())
    return out


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def token_error_metrics(predictions: Sequence[str], gold: Sequence[str], no_error: str = "O") -> dict[str, float]:
    """[FG] R1/R2 metric over labelled positions (``Ignore`` positions already removed).

    Any tag but ``no_error`` is an error, so the positions split into TP = pred ≠ O ∧ gold ≠ O;
    FP = pred ≠ gold ∧ gold = O; FN = pred ≠ gold ∧ pred = O; TN = both O. Precision/recall/F1 of
    the error class come from (TP, FP, FN), of the no-error class from (TN, FN, FP), and
    ``accuracy = (TP + TN) / n`` (so an error predicted with the wrong error tag still counts, as in
    the seed). A ratio with a zero denominator is 0.
    """
    pred, ref = np.asarray(predictions, dtype=object), np.asarray(gold, dtype=object)
    if ref.size == 0:
        raise ValueError("no labelled position; the token metrics are undefined")
    _same_length(predictions=pred, gold=ref)
    pred_ok, gold_ok = pred == no_error, ref == no_error
    tp, fp = int(np.sum(~pred_ok & ~gold_ok)), int(np.sum(~pred_ok & gold_ok))
    fn, tn = int(np.sum(pred_ok & ~gold_ok)), int(np.sum(pred_ok & gold_ok))
    out = {"accuracy": (tp + tn) / ref.size, "n_error": tp + fn, "n_no_error": tn + fp}
    for name, (p, r, f) in (("error", _prf(tp, fp, fn)), ("no_error", _prf(tn, fn, fp))):
        out |= {f"{name}_precision": p, f"{name}_recall": r, f"{name}_f1": f}
    return out


def labelled_tags(
    logits, labels, label_names: Sequence[str], restrict_to: tuple[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """``(predicted, gold)`` tags at the labelled positions of a token classifier.

    ``logits`` (B, T, C), ``labels`` (B, T) class indices with -100 where a position is not a
    target, ``label_names`` the C class names. The prediction is the argmax over all C outputs,
    as in the seed's training-time metric (where the ``Ignore`` output can win and then counts as
    an error); ``restrict_to=(error, no_error)`` takes the argmax over those two only, as the seed
    does at RL inference (docs/sources.md §10.6).
    """
    z, y = np.asarray(logits, dtype=float), np.asarray(labels)
    if z.shape[:-1] != y.shape or z.shape[-1] != len(label_names):
        raise ValueError(f"logits {z.shape} do not match labels {y.shape} and {len(label_names)} label names")
    keep = y != -100
    names = np.asarray(label_names, dtype=object)
    if restrict_to is None:
        pred = names[z[keep].argmax(-1)]
    else:
        pair = [list(label_names).index(t) for t in restrict_to]
        pred = np.asarray(restrict_to, dtype=object)[z[keep][:, pair].argmax(-1)]
    return pred.tolist(), names[y[keep]].tolist()


def token_error_baselines(gold: Sequence[str], error: str, no_error: str = "O") -> dict[str, dict[str, float]]:
    """[FG] trivial baselines: ``token_error_metrics`` of predicting ``error`` everywhere and
    ``no_error`` everywhere."""
    return {
        "all_error": token_error_metrics([error] * len(gold), gold, no_error),
        "all_no_error": token_error_metrics([no_error] * len(gold), gold, no_error),
    }


def spearman(scores, gold) -> float:
    """Spearman rank correlation of RM scores with gold scores (ties get average ranks)."""
    s, g = _array(scores, "scores"), _array(gold, "gold")
    _same_length(scores=s, gold=g)
    if len(s) < 2 or np.ptp(s) == 0 or np.ptp(g) == 0:
        raise ValueError("spearman needs at least two distinct scores and two distinct gold values")
    return float(spearmanr(s, g).statistic)


def gold_pair_accuracy(score_a, score_b, gold_a, gold_b) -> float:
    """Share of pairs the RM orders as the gold judge does. Pairs the gold judge ties are left out;
    an RM tie counts 0.5 (the RewardBench convention)."""
    sa, sb, ga, gb = (
        _array(v, n) for v, n in ((score_a, "score_a"), (score_b, "score_b"), (gold_a, "gold_a"), (gold_b, "gold_b"))
    )
    _same_length(score_a=sa, score_b=sb, gold_a=ga, gold_b=gb)
    keep = ga != gb
    if not keep.any():
        raise ValueError("no pair has distinct gold scores; accuracy against gold is undefined")
    a_better = ga[keep] > gb[keep]
    better = np.where(a_better, sa[keep], sb[keep])
    worse = np.where(a_better, sb[keep], sa[keep])
    return float(np.mean(pairwise_correct(better, worse)))


def gating_coefficients(gates, transform) -> np.ndarray:
    """The weight an ArmoRM puts on each raw objective reward, averaged over prompts (K,).

    The score is ``Σ_k g_k R_k`` with ``R = r T`` (``r``: the stage-1 probe rewards, which
    estimate the objectives on their own scale), so it equals ``Σ_j r_j c_j`` with
    ``c = T g`` (the released model's ``gating @ Tᵀ``). ``gates`` (N, K) are the gating outputs
    of N prompts (``logit_scale`` included), ``transform`` the (K, K) debiasing ``T``.
    """
    g, t = np.asarray(gates, dtype=float), np.asarray(transform, dtype=float)
    if g.ndim != 2 or t.shape != (g.shape[1], g.shape[1]) or not len(g):
        raise ValueError(f"need gates (N, K) with N >= 1 and transform (K, K), got {g.shape} and {t.shape}")
    return t @ g.mean(axis=0)


def linear_effects(scores, components) -> np.ndarray:
    """Least-squares coefficients (K,) of ``scores ≈ a + Σ_k b_k component_k``: the weight a
    model's scores put on each gold component, end to end."""
    s, x = _array(scores, "scores"), np.asarray(components, dtype=float)
    if x.ndim != 2 or len(x) != len(s) or len(s) <= x.shape[1] + 1:
        raise ValueError(f"need more rows than components + 1, got scores {s.shape} and components {x.shape}")
    design = np.column_stack([np.ones(len(s)), x])
    return np.linalg.lstsq(design, s, rcond=None)[0][1:]


def weight_agreement(learned, gold, tie_below: float = 1e-6) -> dict[str, float]:
    """Cosine similarity and Spearman rank correlation of learned per-objective weights with the
    gold ones (signed: a penalised objective has a negative gold weight). For the ranks, weights
    closer than ``tie_below`` times the largest one tie: a saturated softmax leaves values like
    1e-20 and 1e-30, whose order is noise."""
    w, g = _array(learned, "learned"), _array(gold, "gold")
    _same_length(learned=w, gold=g)
    norm = np.linalg.norm(w) * np.linalg.norm(g)
    ranked = np.round(w / np.abs(w).max() / tie_below) if norm else w
    return {
        "cosine": float(w @ g / norm) if norm else float("nan"),
        "spearman": float(spearmanr(ranked, g).statistic) if np.ptp(ranked) > 0 and np.ptp(g) > 0 else float("nan"),
    }
