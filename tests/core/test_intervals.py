"""Bootstrap intervals over prompts, the seed spread and the sweep's choice on val, against hand-worked values."""

import numpy as np
import pandas as pd
import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.eval.board import leaderboard
from rlhf_core.eval.intervals import distinct_n_statistic, metric_intervals
from rlhf_core.eval.measures.text import Distinct
from rlhf_core.stages import trials


def test_two_prompts_give_the_percentiles_of_three_resample_means():
    # Resamples of prompts {0: 0.0, 1: 1.0}: means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles are 0 and 1.
    rows = pd.DataFrame({"id": ["a", "b"], "gold": [0.0, 1.0]})
    ci = metric_intervals([rows], ["gold"], seed=0).iloc[0]
    assert (ci["value"], ci["lo"], ci["hi"]) == (0.5, 0.0, 1.0)


def test_samples_of_one_prompt_move_together():
    # Prompt a has two samples (1, 3): a resample drawing a twice and b never has mean 2, never 1 or 3.
    rows = pd.DataFrame({"id": ["a", "a", "b"], "gold": [1.0, 3.0, 5.0]})
    ci = metric_intervals([rows], ["gold"], seed=0).iloc[0]
    assert ci["value"] == pytest.approx(3.0) and (ci["lo"], ci["hi"]) == (2.0, 5.0)


def test_a_normal_sample_gets_the_textbook_width():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"id": range(400), "x": rng.normal(size=400)})
    ci = metric_intervals([rows], ["x"], seed=1).iloc[0]
    assert ci["hi"] - ci["lo"] == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.15)
    assert ci["lo"] < ci["value"] < ci["hi"]


def test_distinct_n_of_a_resample_counts_a_redrawn_prompt_twice():
    texts = [["a b a"], ["b c"]]
    stat = distinct_n_statistic(texts, 1)
    # all prompts: {a, b, c} / 5 tokens; prompt 0 twice: {a, b} / 6; prompt 1 twice: {b, c} / 4
    assert stat(np.array([[0, 1], [0, 0], [1, 1]])) == pytest.approx([3 / 5, 2 / 6, 2 / 4])
    assert stat(np.array([[0, 1]]))[0] == pytest.approx(Distinct(n=[1])._ratio(["a b a", "b c"], 1))


def test_distinct_n_gets_the_jackknife_interval_worked_by_hand():
    # distinct-1 of all three prompts: {a, b, c, d} / 5 = 0.8. Leaving out prompt 0, 1 or 2: 3/3, 3/3, 3/4,
    # mean 11/12; se = sqrt(2/3 * ((1/12)^2 + (1/12)^2 + (1/6)^2)) = 1/6; 0.8 +- 1.96/6, capped at 1.
    rows = pd.DataFrame({"id": [0, 1, 2], "completion": ["a b", "a c", "d"]})
    ci = metric_intervals([rows], ["distinct-1"], seed=0).iloc[0]
    assert ci["value"] == pytest.approx(0.8)
    assert (ci["lo"], ci["hi"]) == pytest.approx((0.8 - 1.959964 / 6, 1.0))


def test_distinct_n_intervals_hold_the_corpus_value():
    # A bootstrap resample repeats prompts, and a repeated text adds n-grams but no new distinct one, so a
    # percentile interval of distinct-n lies below the corpus value; the jackknife's is centred on it.
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    rows = pd.DataFrame({"id": range(150), "completion": [" ".join(rng.choice(words, 8)) for _ in range(150)]})
    ci = metric_intervals([rows, rows.sample(frac=1.0, random_state=1)], ["distinct-1", "distinct-2"], seed=0)
    for _, row in ci.iterrows():
        assert row["lo"] < row["value"] < row["hi"]
        assert row["value"] - row["lo"] == pytest.approx(row["hi"] - row["value"])


def test_a_metric_with_no_rows_or_corpus_rule_has_no_interval():
    rows = pd.DataFrame({"id": [1, 2], "completion": ["x", "y"], "label": ["p", "q"]})
    ci = metric_intervals([rows], ["label", "distinct-1"], seed=0).set_index("metric")
    assert np.isnan(ci.loc["label", "lo"]) and ci.loc["distinct-1", "value"] == 1.0


def _evaluation(values: list[float], seed: int) -> tuple[dict, pd.DataFrame]:
    rows = pd.DataFrame({"id": range(len(values)), "completion": ["w"] * len(values), "gold": values})
    return {"gold": float(np.mean(values)), "n": len(values), "distinct-1": 1 / len(values)}, rows


def test_the_board_picks_the_sweep_point_best_on_val_and_reports_it_on_test_over_seeds():
    # dpo at lr 1e-4 is better on val (0.9 vs 0.1) but worse on test: the board must report 1e-4's
    # test trials, never the better test number of the other point.
    runs = {
        "sft@seed=1": [0.2, 0.4],
        "sft@seed=2": [0.4, 0.6],
        "dpo@lr=5e-05@seed=1": [0.8, 0.8],
        "dpo@lr=5e-05@seed=2": [0.8, 0.8],
        "dpo@lr=0.0001@seed=1": [0.2, 0.4],
        "dpo@lr=0.0001@seed=2": [0.6, 0.4],
        "dpo@lr=5e-05@seed=1@split=val": [0.1, 0.1],
        "dpo@lr=5e-05@seed=2@split=val": [0.1, 0.1],
        "dpo@lr=0.0001@seed=1@split=val": [0.9, 0.9],
        "dpo@lr=0.0001@seed=2@split=val": [0.9, 0.9],
    }
    evals = {k: _evaluation(v, 0) for k, v in runs.items()}
    out = leaderboard({k: s for k, (s, _) in evals.items()}, {k: t for k, (_, t) in evals.items()}, "gold", 0, {})
    board = out["board"].set_index("algorithm")
    assert board.loc["dpo", "setting"] == "lr=0.0001 (best on val of 2)"
    assert board.loc["dpo", "gold"] == pytest.approx(0.4)  # mean of seed means 0.3 and 0.5
    assert board.loc["dpo", "gold_seed_std"] == pytest.approx(np.std([0.3, 0.5], ddof=1))
    assert board.loc["sft", "seeds"] == 2 and board.loc["sft", "gold"] == pytest.approx(0.4)
    sweep = out["sweep"].set_index("setting")
    assert sweep.loc["lr=0.0001", "chosen"] and sweep.loc["lr=5e-05", "test_gold"] == pytest.approx(0.8)
    # the interval of the seed mean: prompts 0 and 1 of both seeds resampled together (means 0.4 / 0.4
    # for dpo: 0.2+0.6 and 0.4+0.4 over two) -> no spread at all
    assert (board.loc["dpo", "gold_lo"], board.loc["dpo", "gold_hi"]) == pytest.approx((0.4, 0.4))


def test_seeds_and_a_sweep_become_trial_partitions_whose_configs_differ_only_there():
    task = load_config(
        task_config_path("demo"),
        ["seeds=[1,2]", "policy.sweep={dpo: {lr: [5e-5, 1.0e-4]}}", "policy.overrides={nll: {lr: 1.0e-4}}"],
    )
    keys = trials.partition_keys(task)
    assert keys[:4] == ["sft@seed=1", "sft@seed=2", "nll@seed=1", "nll@seed=2"]
    assert "dpo@lr=5e-05@seed=2@split=val" in keys and "ppo@seed=1@split=val" not in keys
    variant, algorithm = trials.resolve(task, "dpo@lr=5e-05@seed=2@split=val")
    assert algorithm == "dpo" and variant.policy.train.lr == 5e-5 and variant.evaluation.split == "val"
    assert variant.policy.train.seed == variant.policy.ppo.seed == variant.seed == 2
    assert trials.resolve(task, "nll@seed=1")[0].policy.train.lr == 1e-4  # the committed override
    assert trials.resolve(task, "ppo@seed=1")[0].policy.ppo.lr == task.policy.ppo.lr
    plain = load_config(task_config_path("demo"))
    assert trials.partition_keys(plain) == ["sft", *plain.policy.algorithms]
    assert trials.resolve(plain, "a_lol")[0] is plain  # no override, no seed: the task itself


def test_a_sweep_of_a_task_that_already_samples_val_as_an_extra_split():
    task = load_config(task_config_path("comet"), ["policy.sweep={nll: {lr: [1.0e-5, 1.0e-4]}}"])
    assert task.evaluation.extra_splits == ["val"]
    val, _ = trials.resolve(task, "nll@lr=1e-05@split=val")
    assert (val.evaluation.split, val.evaluation.extra_splits) == ("val", [])
    test, _ = trials.resolve(task, "nll@lr=1e-05")
    assert (test.evaluation.split, test.evaluation.extra_splits) == ("test", ["val"])


def test_a_sweep_of_an_undeclared_algorithm_fails_with_its_path():
    with pytest.raises(ValueError, match=r"policy.sweep: \['rlhf'\] are not in policy.algorithms"):
        load_config(task_config_path("demo"), ["policy.sweep={rlhf: {lr: [1.0e-4]}}"])


def test_the_board_shows_the_evaluations_own_value_and_an_interval_only_of_that_statistic():
    # sft's distinct-1 was counted over the corpus (2 words / 4: 0.5); dpo's per prompt (each prompt 1.0),
    # which the corpus statistic does not reproduce: dpo keeps its own 1.0, without an interval.
    rows = pd.DataFrame({"id": [0, 1], "completion": ["a b", "a b"], "gold": [0.0, 1.0]})
    summaries = {"sft": {"gold": 0.5, "distinct-1": 0.5, "n": 2}, "dpo": {"gold": 0.5, "distinct-1": 1.0, "n": 2}}
    board = leaderboard(summaries, {"sft": rows, "dpo": rows}, "gold", 0, {})["board"].set_index("algorithm")
    assert board.loc["sft", "distinct-1"] == 0.5 and not np.isnan(board.loc["sft", "distinct-1_lo"])
    assert board.loc["dpo", "distinct-1"] == 1.0 and np.isnan(board.loc["dpo", "distinct-1_lo"])
    assert board.loc["dpo", "gold_lo"] == board.loc["sft", "gold_lo"] == 0.0


def test_committed_overrides_may_name_an_algorithm_a_run_leaves_out_but_not_an_unknown_one():
    task = load_config(task_config_path("demo"), ["policy.algorithms=[nll, dpo]"])
    assert "ppo" in task.policy.overrides and trials.partition_keys(task) == ["sft", "nll", "dpo"]
    with pytest.raises(ValueError, match=r"policy.overrides: unknown algorithms \['rlhf'\]"):
        load_config(task_config_path("demo"), ["policy.overrides={rlhf: {lr: 1.0e-4}}"])
