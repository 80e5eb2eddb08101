"""Every leaderboard column is explained: R's formula, each component's scorer and weight, the ranking."""

from rlhf_core.config import load_config, task_config_path
from rlhf_core.eval.legend import leaderboard_legend


def test_the_demo_leaderboard_columns_each_have_a_meaning():
    cfg = load_config(task_config_path("demo"))
    columns = [
        "algorithm",
        "gold",
        "reward",
        "rm",
        "length",
        "diversity",
        "rel_rm",
        "fact_rm",
        "holistic_rm",
        "relevance",
        "factuality",
        "completeness",
        "toxicity",
        "distinct-1",
        "distinct-2",
        "n",
    ]
    legend = leaderboard_legend(cfg, columns)
    assert list(legend) == columns
    assert legend["gold"].startswith(
        "the ranking column (rows best first): mean score of component gold (scorer gold): The simulated human judge"
    )
    assert legend["gold"].endswith("reported only, not in R (weight 0)")
    assert (
        legend["reward"].startswith("R, the task's reward that RL optimises") and "1 * sigmoid(rm)" in legend["reward"]
    )
    assert (
        legend["rm"] == "mean score of component rm (scorer reward_model): the trained reward model 'bt'; weight 1 in R"
    )
    assert legend["relevance"].startswith("the gold judge's relevance")
    assert "(rows best first)" not in legend["reward"]
    assert legend["distinct-2"] == (
        "evaluation metric distinct (distinct, n=[1, 2]): Variety of wording: distinct n-grams / all n-grams of"
        " the samples, reported as ``<name>-<n>`` for each n"
    )
    assert leaderboard_legend(cfg, ["surprise"])["surprise"] == "a column of a scorer's breakdown"
    spread = leaderboard_legend(cfg, ["gold", "gold_lo", "gold_seed_std", "seeds"])
    assert (
        spread["gold_lo"] == "lower end of the 95% interval over prompts (bootstrap; jackknife for distinct-n) of gold"
    )
    assert spread["gold_seed_std"] == "standard deviation over training seeds of gold" and "seeds" in spread["seeds"]


def test_a_component_named_like_a_metric_keeps_its_own_meaning():
    # "distinct_judge" starts with the metric's name and a non-letter, as the metric's "distinct-1" does
    cfg = load_config(task_config_path("demo"), ["annotation.scorers.distinct_judge={scorer: length, weight: 0}"])
    legend = leaderboard_legend(cfg, ["distinct_judge", "distinct-1"])
    assert legend["distinct_judge"].startswith("mean score of component distinct_judge (scorer length)")
    assert legend["distinct-1"].startswith("evaluation metric distinct")
