"""The code location loads, and the demo graph has every stage under demo/ with true lineage."""
import dagster as dg

from pipelines.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_demo_graph_runs_from_raw_data_to_leaderboard():
    graph = defs.resolve_asset_graph()
    demo = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "demo"}
    assert {"raw_feedback", "clean_feedback", "preference_pairs", "annotated_responses", "sft_model",
            "reward_model", "reference_value", "policy", "generations", "evaluation", "leaderboard"} <= demo
    ancestors = dg.AssetSelection.assets(dg.AssetKey(["demo", "leaderboard"])).upstream().resolve(graph)
    assert dg.AssetKey(["demo", "raw_feedback"]) in ancestors
    assert dg.AssetKey(["demo", "reward_model"]) in ancestors


def test_reward_models_are_partitioned_by_their_declared_names():
    for name in ("reward_model", "reward_model_eval"):
        rm = defs.resolve_assets_def(dg.AssetKey(["demo", name]))
        assert rm.partitions_def.get_partition_keys() == ["bt", "ranking", "absolute", "relevance", "factuality", "armo",
                                                          "pair_pm", "holistic"]


def test_rl_assets_are_partitioned_by_algorithm_with_an_sft_baseline():
    policy = defs.resolve_assets_def(dg.AssetKey(["demo", "policy"]))
    assert policy.partitions_def.get_partition_keys() == ["sft", "nll", "a_lol", "dpo", "pro", "ppo", "grpo",
                                                          "fg_ppo"]


def test_jobs_cover_each_partitioning():
    for name in ("demo_data_and_models", "demo_reward_models", "demo_reward_model_board", "demo_annotation", "demo_rl",
                 "demo_leaderboard"):
        assert defs.resolve_job_def(name) is not None
