"""The code location loads, and the demo graph has every stage under demo/ with true lineage."""

import dagster as dg

from pipelines.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_demo_graph_runs_from_raw_data_to_leaderboard():
    graph = defs.resolve_asset_graph()
    demo = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "demo"}
    assert {
        "raw_feedback",
        "clean_feedback",
        "preference_pairs",
        "annotated_responses",
        "sft_model",
        "reward_model",
        "reference_value",
        "policy",
        "generations",
        "evaluation",
        "leaderboard",
    } <= demo
    ancestors = dg.AssetSelection.assets(dg.AssetKey(["demo", "leaderboard"])).upstream().resolve(graph)
    assert dg.AssetKey(["demo", "raw_feedback"]) in ancestors
    assert dg.AssetKey(["demo", "reward_model"]) in ancestors


def test_reward_models_are_partitioned_by_their_declared_names():
    for name in ("reward_model", "reward_model_eval"):
        rm = defs.resolve_assets_def(dg.AssetKey(["demo", name]))
        assert rm.partitions_def.get_partition_keys() == [
            "bt",
            "ranking",
            "absolute",
            "relevance",
            "factuality",
            "armo",
            "pair_pm",
            "holistic",
        ]


def test_rl_assets_are_partitioned_by_algorithm_with_an_sft_baseline():
    policy = defs.resolve_assets_def(dg.AssetKey(["demo", "policy"]))
    assert policy.partitions_def.get_partition_keys() == ["sft", "nll", "a_lol", "dpo", "pro", "ppo", "grpo", "fg_ppo"]


def test_jobs_cover_each_partitioning():
    for name in (
        "demo_data_and_models",
        "demo_reward_models",
        "demo_reward_model_board",
        "demo_annotation",
        "demo_rl",
        "demo_leaderboard",
    ):
        assert defs.resolve_job_def(name) is not None


def test_a_broken_task_file_shows_as_its_error_and_every_other_task_loads(tmp_path):
    """The UI's code location over configs/tasks/ plus one file with invalid YAML."""
    from pipelines.definitions import build_definitions
    from rlhf_core.config import tasks_dir

    for path in tasks_dir().glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "broken.yaml").write_text("task: broken\nseed: [1, 2\nsft: {}\n")
    broken_defs = build_definitions(tmp_path)
    dg.Definitions.validate_loadable(broken_defs)
    graph = broken_defs.resolve_asset_graph()
    by_task = {}
    for key in graph.get_all_asset_keys():
        by_task.setdefault(key.path[0], set()).add(key)
    whole = defs.resolve_asset_graph().get_all_asset_keys()
    assert {k for k in graph.get_all_asset_keys() if k.path[0] != "broken"} == set(whole)
    assert by_task["broken"] == {dg.AssetKey(["broken", "config_error"])}
    placeholder = graph.get(dg.AssetKey(["broken", "config_error"]))
    assert "broken.yaml:3:4: invalid YAML" in placeholder.description
    assert "broken.yaml:3:4: invalid YAML" in placeholder.metadata["error"].value
