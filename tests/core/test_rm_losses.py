"""Every reward-model kind's loss against numbers computed by hand (docs/sources.md §5.1-§5.7)."""

import math

import pytest
import torch

from rlhf_core.train import rm_losses as L


def softplus(x: float) -> float:  # log(1 + e^x), so -log σ(d) = softplus(-d)
    return math.log1p(math.exp(x))


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_bradley_terry_is_the_mean_over_pairs():
    # pair 1: -log σ(1) = log(1 + e^-1); pair 2 (tie): -log σ(0) = log 2
    assert L.bradley_terry(t(1.0, 0.0), t(0.0, 0.0)).item() == pytest.approx((softplus(-1) + math.log(2)) / 2)


def test_fg_sequence_preference_scores_preferred_over_other():
    # σ(ln 3) = 3/4, so the loss of that pair is ln(4/3); the swapped pair costs ln 4.
    assert L.fg_sequence_preference(t(math.log(3)), t(0.0)).item() == pytest.approx(math.log(4 / 3))
    assert L.fg_sequence_preference(t(0.0), t(math.log(3))).item() == pytest.approx(math.log(4))


def test_token_classification_averages_labelled_positions_only():
    logits = torch.tensor([[[0.0, 0.0, 0.0], [9.0, -9.0, 0.0], [0.0, 0.0, math.log(2)]]], dtype=torch.float64)
    labels = torch.tensor([[0, L.IGNORE_INDEX, 2]])
    # position 0: uniform over 3 -> ln 3; position 2: p = 2 / (1 + 1 + 2) -> ln 2; position 1 ignored
    assert L.token_classification(logits, labels).item() == pytest.approx((math.log(3) + math.log(2)) / 2)


def test_token_classification_refuses_a_batch_without_targets():
    with pytest.raises(ValueError, match="no labelled position"):
        L.token_classification(torch.zeros(1, 2, 3), torch.full((1, 2), L.IGNORE_INDEX))


def test_crs_ranking_over_all_pairs_with_the_l2_term():
    beta = 0.1
    # conversation 1 (K=3) ranked 2 > 1 > 0: pairs (2,1), (2,0), (1,0)
    conv1 = (
        softplus(-1) + beta * 0.5 * (4 + 1) + softplus(-2) + beta * 0.5 * (4 + 0) + softplus(-1) + beta * 0.5 * (1 + 0)
    ) / 3
    # conversation 2 (K=2), a tie at 0: log 2 and no L2
    conv2 = math.log(2)
    got = L.crs_ranking(t(2.0, 1.0, 0.0, 0.0, 0.0), [0, 3, 5], beta=beta).item()
    assert got == pytest.approx((conv1 + conv2) / 2)


def test_crs_ranking_k2_without_beta_is_bradley_terry_and_order_matters():
    assert L.crs_ranking(t(1.0, 0.0), [0, 2], beta=0.0).item() == pytest.approx(softplus(-1))
    assert L.crs_ranking(t(0.0, 1.0), [0, 2], beta=0.0).item() == pytest.approx(softplus(1))
    # default beta 0.001 adds 0.001 * 0.5 * (1 + 0)
    assert L.crs_ranking(t(1.0, 0.0), [0, 2]).item() == pytest.approx(softplus(-1) + 0.0005)


def test_crs_ranking_rejects_single_replies_and_bad_bounds():
    with pytest.raises(ValueError, match="conversation 1 has 1 replies"):
        L.crs_ranking(t(1.0, 0.0, 3.0), [0, 2, 3])
    with pytest.raises(ValueError, match="cu_lengths"):
        L.crs_ranking(t(1.0, 0.0, 3.0), [0, 2])


def test_crs_low_score_weight_counts_the_threshold_as_low():
    # N = 4, two rows <= 0.4 (0.1 and exactly 0.4): 0.75 * 4 / 2
    assert L.crs_low_score_weight(t(0.1, 0.4, 0.5, 0.9)) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="no training score"):
        L.crs_low_score_weight(t(0.5, 0.9))


def test_crs_absolute_is_weighted_squared_error_of_the_sigmoid():
    # σ(0) = 0.5 vs y 0.4 (low, weight 1.5); σ(ln 3) = 0.75 vs y 1.0 (weight 1)
    got = L.crs_absolute(t(0.0, math.log(3)), t(0.4, 1.0), low_weight=1.5).item()
    assert got == pytest.approx((1.5 * 0.1**2 + 1.0 * 0.25**2) / 2)


def test_pairwise_preference_is_cross_entropy_on_the_label_token():
    logits = torch.tensor([[0.0, math.log(2), 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    # row 1: p(token 1) = 2 / 5; row 2: uniform over 4
    got = L.pairwise_preference(logits, torch.tensor([1, 0])).item()
    assert got == pytest.approx((-math.log(0.4) + math.log(4)) / 2)


def test_pair_pm_probability_averages_both_orders_over_the_two_labels():
    a_id, b_id = 1, 2
    # first response shown as A: logits A = ln 3, B = 0 -> P(A) = 3/4 (token 0's large logit is ignored)
    ab = torch.tensor([[50.0, math.log(3), 0.0]], dtype=torch.float64)
    # first response shown as B: equal logits -> P(B) = 1/2
    ba = torch.tensor([[50.0, 0.0, 0.0]], dtype=torch.float64)
    assert L.pair_pm_probability(ab, ba, a_id, b_id).item() == pytest.approx((0.75 + 0.5) / 2)


def test_armo_pair_loss_is_bce_on_the_difference():
    assert L.armo_pair_loss(t(1.0, 2.0), t(1.0, 0.0)).item() == pytest.approx((math.log(2) + softplus(-2)) / 2)
