"""Every seed workflow runs whole, exactly as ``rlhf run TASK --profile tiny`` (README,
configs/profiles/tiny/): data -> the task's reward models where it trains them -> its policies -> its own
evaluation table (docs/sources.md §7), through Dagster, offline, on the shipped fixtures and tiny random
models of the seeds' architectures (data/fixtures/tiny_models, written by tests/tiny_models.py).

detox, hh_rlhf and hh_pro run in ``make test``; qa_feedback and oasst_crs (which train their RMs first) and the
[LoL] generation tasks (eight policies each) run under ``make seeds-check`` only.
"""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd
import pytest

from pipelines.runner import run_task
from resources import build_resources
from tests.core.tiny_rl import one_thread
from tests.dagster.documented import shown

LOL_FAMILY = ["nll", "wbc", "r_gold", "r_lol", "a_lol", "a_lol_ref_free", "a_lol_seq"]
ALGORITHMS = {
    "hh_rlhf": ["ppo"],
    "detox": ["ppo", "fg_ppo"],
    "qa_feedback": ["fg_ppo"],
    "oasst_crs": ["ppo"],
    "hh_pro": ["pro"],
    "comet": LOL_FAMILY,
    "reddit": LOL_FAMILY,
    "faithdial": LOL_FAMILY,
}
LOL_COLUMNS = ["final_reward", "distinct-1", "distinct-2", "distinct-3", "avg_response_len", "meteor"]
# Each task's own evaluation table (docs/sources.md §7), as its YAML's evaluation.metrics name it.
EVALUATION_COLUMNS = {
    "hh_rlhf": ["distinct-1", "distinct-2"],
    "detox": ["avg_max_toxicity", "toxicity_probability", "perplexity", "dist-2", "dist-3"],
    "qa_feedback": [
        "rouge",
        "relevance_ratios",
        "factuality_ratios",
        "completeness_rewards",
        "rewards",
        "lengths",
        "n_sub_sentences",
        "n_sentences",
    ],
    "oasst_crs": [
        "ranking_logit",
        "ranking_logit_std",
        "absolute_logit",
        "absolute_logit_std",
        "crs_025",
        "crs_025_std",
        "crs_0625",
        "crs_0625_std",
    ],
    "hh_pro": ["avg_response_len", "distinct-1", "distinct-2", "distinct-3"],
    "comet": ["p_valid_model", *LOL_COLUMNS],
    "reddit": ["fluency", "depth", "updown", "safe", "tfidf", *LOL_COLUMNS],
    "faithdial": [
        "fluency",
        "faithdial",
        "depth",
        "tfidf",
        *LOL_COLUMNS,
        "coverage",
        "coverage_std",
        "density",
        "density_std",
    ],
}
# The metric of each [LoL] generation task's validation history (policy.validation.metric; R as final_reward).
VALIDATION_METRIC = {"comet": "p_valid_model", "reddit": "final_reward", "faithdial": "faithdial"}
# Too long for make test (each over 2 minutes on 2 cores: RMs trained, or eight policies): make seeds-check.
SEEDS_CHECK = {"qa_feedback", "oasst_crs", "comet", "reddit", "faithdial"}


@pytest.mark.parametrize(
    "task", [pytest.param(t, marks=pytest.mark.seeds) if t in SEEDS_CHECK else t for t in sorted(ALGORITHMS)]
)
def test_seed_workflow_runs_whole_on_the_tiny_profile(task, tmp_path, monkeypatch):
    assert shown(f"run {task} --profile tiny")  # the README's command for this seed
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    art = tmp_path / "art"
    with one_thread():
        assert run_task(task, [], [], profile="tiny", resources=build_resources(str(art))) == 0

    board = pd.read_csv(art / task / "leaderboard.csv")
    assert sorted(board["algorithm"]) == sorted(["sft", *ALGORITHMS[task]])
    assert board["reward"].notna().all() and board["seeds"].gt(0).all()
    table = board[EVALUATION_COLUMNS[task]]
    if task == "qa_feedback":  # a ratio over no segment (the tiny T5 may answer with nothing) is undefined
        judged = board["n_sub_sentences"].gt(0) & board["n_sentences"].gt(0)
        assert table[~judged][["relevance_ratios", "factuality_ratios"]].isna().all().all()
        table = table[judged]
        assert table[["relevance_ratios", "factuality_ratios"]].stack().between(0, 1).all()
    assert table.notna().all().all(), board.T
    print(f"{task} evaluation table:\n{board.head(1).T}")
    if ALGORITHMS[task] == LOL_FAMILY:  # val and test, generations and references, in the seed aggregator's layout
        check_aggregate(pd.read_csv(art / task / "aggregate.csv"), task)
    for algorithm in ALGORITHMS[task]:
        records = dg.DagsterInstance.get().fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey([task, "policy"]), asset_partitions=[algorithm]), limit=1
        )
        meta = {k: v.value for k, v in records.records[0].asset_materialization.metadata.items()}
        if algorithm not in ("ppo", "fg_ppo"):  # PRO and the offline family
            assert meta["steps"] >= 1 and math.isfinite(meta["final_loss"])
            if algorithm in LOL_FAMILY:  # two validation points in its one epoch (one per step if it has fewer)
                every = max(1, meta["steps"] // 2)
                points = [r.data["step"] for r in meta["validation"].records]
                assert points == [s for s in range(1, meta["steps"] + 1) if s % every == 0]
            continue
        assert meta["steps"] == 2 and meta["stop_reason"] == ""
        assert meta["semantics"] == {"ppo": "legacy_step", "fg_ppo": "fine_grained"}[algorithm]
        assert len(meta["reward_per_step"]) == 2 and all(math.isfinite(r) for r in meta["reward_per_step"])
        if task == "qa_feedback":  # greedy eval on the dev prompts after every step: the best weights are kept
            assert meta["best_step"] in (0, 1, 2) and math.isfinite(meta["best_eval_reward"])


def check_aggregate(aggregate: pd.DataFrame, task: str) -> None:
    """The [LoL] aggregator's columns: the best and worst points of each trained policy's validation history
    (of the task's policy.validation.metric, two points an epoch on the tiny profile), the metric's final val
    and test values, then every group's values (docs/sources.md §7.2)."""
    metric = VALIDATION_METRIC[task]
    points = [f"{side} {c}" for side in ("best", "worst") for c in ("e", "s", f"V {metric}")]
    assert list(aggregate.columns[:9]) == ["task_name", "baseline_model", "algorithm", *points]
    assert list(aggregate.columns[9:11]) == [f"val_{metric}", f"test_{metric}"]
    segments = [c.split(" ")[0] for c in aggregate.columns[11:]]
    assert list(dict.fromkeys(segments)) == ["val_gen", "test_gen", "val_gold", "test_gold"]
    assert aggregate[[f"{s} reward" for s in dict.fromkeys(segments)]].notna().all().all()
    trained = aggregate[aggregate["algorithm"] != "sft"].set_index("algorithm")
    assert sorted(trained.index) == sorted(LOL_FAMILY)
    assert trained[points].notna().all().all(), trained[points]
    assert trained[["best e", "worst e"]].eq(1).all().all()  # one epoch
    assert (trained[f"best V {metric}"] >= trained[f"worst V {metric}"]).all()
    assert aggregate.loc[aggregate["algorithm"] == "sft", points].isna().all().all()  # the start kept no history
    print(f"{task} aggregate table:\n{aggregate.head(2).T}")


@pytest.mark.seeds
def test_rlhflow_runs_whole_on_the_tiny_profile(tmp_path, monkeypatch):
    """[RF] has no policy: its workflow ends in the RewardBench table of its three RMs (docs/sources.md §7.5)."""
    assert shown("run rlhflow --profile tiny")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with one_thread():
        assert run_task("rlhflow", [], [], profile="tiny", resources=build_resources(str(tmp_path / "art"))) == 0
    meta = (
        dg.DagsterInstance.get()
        .get_latest_materialization_event(dg.AssetKey(["rlhflow", "reward_bench"]))
        .asset_materialization.metadata
    )
    board = pd.read_parquet(f"{meta['artifact'].value}/table.parquet")
    assert sorted(board["model"]) == ["armo", "bt", "pair_pm"]
    assert board[["Chat", "Chat Hard", "Safety", "Reasoning", "overall"]].stack().between(0, 100).all(), board
    print(f"rlhflow RewardBench table:\n{board}")
