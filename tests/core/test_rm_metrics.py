"""The seeds' reward-model metrics against numbers computed by hand (docs/sources.md §5.1-§5.5, §7.4)."""

import math

import pytest

from rlhf_core.eval import rm_metrics as M


def test_pair_accuracy_counts_ties_as_wrong():
    # 1 > 0 yes, 2 > 2 no (tie), 3 > 1 yes, 0 > 1 no
    assert M.pair_accuracy([1, 2, 3, 0], [0, 2, 1, 1]) == 0.5


def test_pair_accuracy_rejects_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="length mismatch"):
        M.pair_accuracy([1, 2], [0])
    with pytest.raises(ValueError, match="empty"):
        M.pair_accuracy([], [])


def test_ranking_metrics_compare_first_and_last_reply():
    # conversation 1: pos 3 vs neg 2 (the middle reply is ignored); conversation 2 (K=2): pos 0 vs neg 5
    got = M.ranking_metrics([3, 1, 2, 0, 5], [0, 3, 5])
    assert got == pytest.approx({"accuracy": 0.5, "pos_score": 1.5, "neg_score": 3.5, "score_diff": -2.0})
    with pytest.raises(ValueError, match="at least 2 replies"):
        M.ranking_metrics([3, 1, 2], [0, 2, 3])


def test_absolute_metrics_split_at_the_low_score_threshold():
    # errors 0.2 (y = 0.4, low), 0.0 (y = 0.1, low), -0.3 (y = 1.0, high)
    got = M.absolute_metrics([0.6, 0.1, 0.7], [0.4, 0.1, 1.0])
    assert got == pytest.approx(
        {
            "mse": (0.04 + 0.0 + 0.09) / 3,
            "mae": (0.2 + 0.0 + 0.3) / 3,
            "n_all": 3,
            "mse_low": 0.04 / 2,
            "mae_low": 0.2 / 2,
            "n_low": 2,
            "mse_high": 0.09,
            "mae_high": 0.3,
            "n_high": 1,
        }
    )


def test_absolute_metrics_report_an_empty_bin_as_nan():
    got = M.absolute_metrics([0.5], [0.9])
    assert got["n_low"] == 0 and math.isnan(got["mse_low"]) and got["mae_high"] == pytest.approx(0.4)


GOLD = ["O", "E", "E", "O", "O", "E", "O", "O"]
PRED = ["O", "E", "O", "E", "O", "X", "O", "E"]  # X: another non-O tag (e.g. the Ignore output)


def test_token_error_metrics_follow_the_fg_confusion_counts():
    # TN, TP, FN, FP, TN, TP (X counts as an error), TN, FP -> TP 2, FP 2, FN 1, TN 3
    got = M.token_error_metrics(PRED, GOLD)
    assert got == pytest.approx(
        {
            "accuracy": 5 / 8,
            "n_error": 3,
            "n_no_error": 5,
            "error_precision": 2 / 4,
            "error_recall": 2 / 3,
            "error_f1": 2 / (2 + 0.5 * (2 + 1)),
            "no_error_precision": 3 / 4,
            "no_error_recall": 3 / 5,
            "no_error_f1": 3 / (3 + 0.5 * (1 + 2)),
        }
    )


def test_token_error_baselines_predict_one_class_everywhere():
    got = M.token_error_baselines(GOLD, error="E")
    # all error: TP 3, FP 5; all no-error: TN 5, FN 3
    assert got["all_error"]["accuracy"] == pytest.approx(3 / 8)
    assert got["all_error"]["error_precision"] == pytest.approx(3 / 8)
    assert got["all_error"]["error_recall"] == 1.0
    assert got["all_error"]["no_error_f1"] == 0.0
    assert got["all_no_error"]["accuracy"] == pytest.approx(5 / 8)
    assert got["all_no_error"]["error_f1"] == 0.0
    assert got["all_no_error"]["no_error_precision"] == pytest.approx(5 / 8)


def test_spearman_by_rank_differences_and_with_ties():
    # ranks (1,2,3,4) vs (1,3,2,4): sum d^2 = 2, rho = 1 - 6*2 / (4*(16-1))
    assert M.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(1 - 12 / 60)
    # average ranks (1.5, 1.5, 3) vs (1, 2, 3): covariance 1.5, variances 1.5 and 2
    assert M.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(1.5 * 2))
    with pytest.raises(ValueError, match="distinct"):
        M.spearman([1, 1, 1], [1, 2, 3])


def test_gold_pair_accuracy_orients_pairs_by_gold():
    # pair 1: gold a > b, rm a > b -> 1; pair 2: gold a > b, rm b > a -> 0; pair 3: gold b > a, rm tie -> 0.5;
    # pair 4: gold tie -> left out; pair 5: gold b > a, rm b > a -> 1
    got = M.gold_pair_accuracy([1, 0, 2, 5, 0], [0, 1, 2, 9, 3], [2, 2, 1, 3, 0], [1, 1, 3, 3, 1])
    assert got == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError, match="distinct gold"):
        M.gold_pair_accuracy([1], [0], [1], [1])


def test_labelled_tags_read_predictions_at_labelled_positions():
    names = ["O", "NF-ERR", "Ignore"]
    logits = [[[0.0, 1.0, 2.0], [9.0, 9.0, 9.0], [3.0, 1.0, 0.0]]]
    labels = [[0, -100, 1]]
    # position 0: Ignore wins the 3-way argmax, NF-ERR beats O in the 2-way one; position 1 unlabelled
    assert M.labelled_tags(logits, labels, names) == (["Ignore", "O"], ["O", "NF-ERR"])
    assert M.labelled_tags(logits, labels, names, restrict_to=("NF-ERR", "O")) == (["NF-ERR", "O"], ["O", "NF-ERR"])
    with pytest.raises(ValueError, match="do not match"):
        M.labelled_tags(logits, labels, names[:2])


def test_armo_gating_coefficients_and_their_agreement_with_gold_weights():
    # Two prompts' gates average to g = (0.4, 0.3, 0.2, 0.1); gold weights (1, 1, 1, -1) (toxicity penalised).
    gates = [[0.5, 0.3, 0.2, 0.0], [0.3, 0.3, 0.2, 0.2]]
    identity = [[float(i == j) for j in range(4)] for i in range(4)]
    assert M.gating_coefficients(gates, identity) == pytest.approx([0.4, 0.3, 0.2, 0.1])
    agree = M.weight_agreement([0.4, 0.3, 0.2, 0.1], [1, 1, 1, -1])
    # cosine 0.8 / (sqrt(0.30) * 2); ranks (4, 3, 2, 1) vs (3, 3, 3, 1): 3 / sqrt(5 * 3)
    assert agree["cosine"] == pytest.approx(0.8 / (math.sqrt(0.30) * 2))
    assert agree["spearman"] == pytest.approx(3 / math.sqrt(15))
    # Debiasing against objective 3 with penalties (0.5, 0.25, 0, 1): T = I with row 3 minus them, and
    # score = sum_k g_k (r T)_k = sum_j r_j (T g)_j, so c_3 = -0.5 * 0.4 - 0.25 * 0.3 = -0.275.
    transform = [row[:] for row in identity]
    transform[3] = [-0.5, -0.25, 0.0, 0.0]
    coeffs = M.gating_coefficients(gates, transform)
    assert coeffs == pytest.approx([0.4, 0.3, 0.2, -0.275])
    assert M.weight_agreement(coeffs, [1, 1, 1, -1])["cosine"] == pytest.approx(1.175 / (2 * math.sqrt(0.365625)))
    # A saturated gate: (1.2, 3e-22, 4e-15, 2e-38) ranks as (1.2, 0, 0, 0), i.e. (4, 2, 2, 2) against
    # (3, 3, 3, 1): covariance of the centred ranks 1, variances 3 and 3 -> 1/3; cosine 1.2 / (1.2 * 2).
    saturated = M.weight_agreement([1.2, 3e-22, 4e-15, 2e-38], [1, 1, 1, -1])
    assert saturated == pytest.approx({"cosine": 0.5, "spearman": 1 / 3})


def test_linear_effects_recover_the_weights_of_an_exact_linear_score():
    comps = [[0, 0], [1, 0], [0, 1], [1, 1], [2, 1]]
    scores = [3 + 2 * a - 0.5 * b for a, b in comps]
    assert M.linear_effects(scores, comps) == pytest.approx([2.0, -0.5])
    with pytest.raises(ValueError, match="more rows"):
        M.linear_effects(scores[:3], comps[:3])
