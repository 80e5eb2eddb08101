"""End to end: the demo graph on a micro config, through Dagster, twice."""
import shutil

import pandas as pd
import pytest
import dagster as dg

from pipelines.runner import run_task
from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import load_config, task_config_path
from tests.dagster.ranges import materialize_range, refs

MICRO = [
    "world.n_prompts={train: 40, val: 8, test: 8}",
    "world.malformed_rows=6",
    "tokenizer.vocab_size=300",
    "sft.model.init={n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}",
    "sft.train.epochs=1",
    "reward_model.train.epochs=1",
    "reference_value.epochs=1",
    "reference_value.generation.max_new_tokens=16",
    "evaluation.generation.max_new_tokens=16",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    resources = build_resources(str(root / "artifacts"))
    assert run_task("demo", MICRO, [], resources=resources) == 0
    yield root, resources
    mp.undo()


def latest(key: str) -> dict:
    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(["demo", key]))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_leaderboard_has_a_measured_row_per_algorithm(run):
    root, _ = run
    board = pd.read_csv(root / "artifacts" / "demo" / "leaderboard.csv")
    assert sorted(board["algorithm"]) == ["a_lol", "dpo", "nll", "sft"]
    for col in ("gold_reward", "rm_reward", "length", "distinct_2"):
        assert board[col].notna().all()


def test_metadata_reports_quarantine_and_rm_accuracy(run):
    assert latest("raw_feedback")["quarantined_rows"] > 0
    assert 0.0 <= latest("reward_model")["heldout_accuracy_vs_gold"] <= 1.0


def test_an_unchanged_rerun_recomputes_nothing(run):
    _, resources = run
    assert run_task("demo", MICRO, [], resources=resources) == 0
    assert latest("sft_model")["cached"] is True
    assert latest("reward_model")["cached"] is True


def test_rl_assets_under_a_backfill_range_write_and_read_one_ref_per_partition(run):
    root, resources = run
    assets = build_task_definitions(load_config(task_config_path("demo"), MICRO)).assets
    folders = {name: root / "artifacts" / "_refs" / "demo" / name for name in ("policy", "generations", "evaluation")}
    single_key_refs = {name: refs(folder) for name, folder in folders.items()}
    for name, folder in folders.items():  # each reads its parent's refs as the range run wrote them
        shutil.rmtree(folder)
        assert materialize_range(assets, dg.AssetKey(["demo", name]), "sft", "dpo", resources).success
        assert refs(folder) == single_key_refs[name]  # same artifacts: nothing crossed partitions
    assert latest("evaluation")["algorithm"] in ("sft", "nll", "a_lol", "dpo")


def test_changing_one_stage_rebuilds_only_it_and_its_descendants(run):
    _, resources = run
    changed = MICRO + ["reference_value.lr=0.01"]
    assert run_task("demo", changed, ["models"], resources=resources) == 0
    assert latest("sft_model")["cached"] is True
    assert latest("reference_value")["cached"] is False
