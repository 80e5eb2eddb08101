"""End to end: the demo graph on a micro config, through Dagster, twice."""
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import dagster as dg

from pipelines.cli import main
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
    *(f"reward_models.{n}.train.epochs=1" for n in ("bt", "holistic", "ranking", "absolute", "relevance", "factuality",
                                                     "pair_pm", "armo")),
    "reward_model_eval.samples_per_prompt=2",
    "reward_model_eval.max_new_tokens=16",
    "reference_value.epochs=1",
    "reference_value.generation.max_new_tokens=16",
    "evaluation.generation.max_new_tokens=16",
    # two tiny rollouts each for ppo, grpo (groups of 2) and fg_ppo
    "policy.ppo={steps: 2, prompts_per_rollout: 4, samples_per_prompt: 2, mini_batch_size: 4, ppo_epochs: 1,"
    " max_new_tokens: 8}",
    "policy.fg_ppo.ppo={steps: 2, prompts_per_rollout: 4, samples_per_prompt: 2, mini_batch_size: 4, ppo_epochs: 1,"
    " max_new_tokens: 8}",
]


def micro_args() -> list[str]:
    return [arg for item in MICRO for arg in ("--set", item)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    mp.setenv("RLHF_ARTIFACTS", str(root / "artifacts"))
    resources = build_resources()
    assert main(["run", "demo", "--verbose", *micro_args()]) == 0  # the documented `rlhf run demo`, micro config
    yield root, resources
    mp.undo()


def latest(key: str, partition: str | None = None) -> dict:
    records = dg.DagsterInstance.get().fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey(["demo", key]), asset_partitions=[partition] if partition else None),
        limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_leaderboard_has_a_measured_row_per_algorithm(run):
    root, _ = run
    board = pd.read_csv(root / "artifacts" / "demo" / "leaderboard.csv")
    assert sorted(board["algorithm"]) == ["a_lol", "dpo", "fg_ppo", "grpo", "nll", "ppo", "pro", "sft"]
    for col in ("gold", "reward", "rm", "relevance", "length", "distinct_2"):
        assert board[col].notna().all()


def test_pro_and_online_partitions_train_and_report_their_metrics(run):
    pro = latest("policy", "pro")
    assert pro["algorithm"] == "pro" and pro["steps"] > 0 and math.isfinite(pro["final_loss"])
    assert 0.0 <= pro["rank_accuracy"] <= 1.0
    for algorithm, semantics in (("ppo", "legacy_step"), ("grpo", "grpo")):
        m = latest("policy", algorithm)
        assert m["semantics"] == semantics and m["steps"] == 2 and m["train_prompts"] > 0
        assert len(m["reward_per_step"]) == 2
        assert all(0.0 <= r <= 1.0 for r in m["reward_per_step"])  # R here is the sigmoid of the RM logit
        assert {"time_generation_s", "time_scoring_s", "time_update_s"} <= set(m)
    fg = latest("policy", "fg_ppo")  # the dense reward of the trained R1, R2 and R3
    assert fg["semantics"] == "fine_grained" and fg["steps"] == 2 and fg["stop_reason"] == ""
    assert len(fg["reward_per_step"]) == 2 and all(math.isfinite(r) for r in fg["reward_per_step"])


def test_metadata_reports_quarantine_and_rm_accuracy(run):
    assert latest("raw_feedback")["quarantined_rows"] > 0
    assert 0.0 <= latest("reward_model_eval", "bt")["heldout"]["pair_accuracy"] <= 1.0


def test_reward_model_board_has_a_row_per_rm_judged_against_gold(run):
    root, _ = run
    board = pd.read_csv(root / "artifacts" / "demo" / "reward_models.csv")
    assert board["name"].tolist() == ["absolute", "armo", "bt", "factuality", "holistic", "pair_pm", "ranking",
                                      "relevance"]
    assert board["heldout_value"].notna().all()
    bt = board.set_index("name").loc["bt"]
    assert -1 <= bt["gold_spearman_logged"] <= 1 and 0 <= bt["gold_pair_acc_logged"] <= 1
    for col in ("gold_spearman_logged", "gold_spearman_sampled", "gold_pair_acc_logged", "gold_pair_acc_sampled"):
        # NaN: undefined on micro data (an RM with one score for all, or samples gold ties throughout)
        assert (board[col].between(-1, 1) | board[col].isna()).all(), col
    # the demo ArmoRM's weights on the gold judge's components against the judge's own weights
    armo = board.set_index("name").loc["armo"]
    assert -1 <= armo["gating_gold_cosine"] <= 1 and board["gating_gold_cosine"].notna().sum() == 1


def test_asset_checks_pass_inside_their_assets_steps(run):
    instance = dg.DagsterInstance.get()
    checks = [dg.AssetCheckKey(dg.AssetKey(["demo", asset]), name) for asset, name in
              [("preference_pairs", "non_empty"), ("preference_pairs", "pairs_valid"), ("sft_data", "non_empty")]]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    for check in checks:
        record = latest[check]
        assert record.status.value in ("SUCCEEDED", "FAILED"), check  # it ran
        materialized = [e for e in instance.all_logs(record.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                        if e.dagster_event.asset_key == check.asset_key]
        assert [e.step_key for e in materialized] == [record.event.step_key]  # evaluated in the asset's own step
    assert latest[checks[1]].status.value == "SUCCEEDED"


def test_an_unchanged_rerun_recomputes_nothing(run):
    _, resources = run
    assert run_task("demo", MICRO, [], resources=resources) == 0
    assert latest("sft_model")["cached"] is True
    assert latest("reward_model", "bt")["cached"] is True


def test_rl_assets_under_a_backfill_range_write_and_read_one_ref_per_partition(run):
    root, resources = run
    assets = build_task_definitions(load_config(task_config_path("demo"), MICRO)).assets
    folders = {name: root / "artifacts" / "_refs" / "demo" / name for name in ("policy", "generations", "evaluation")}
    single_key_refs = {name: refs(folder) for name, folder in folders.items()}
    for name, folder in folders.items():  # each reads its parent's refs as the range run wrote them
        shutil.rmtree(folder)
        assert materialize_range(assets, dg.AssetKey(["demo", name]), "sft", "fg_ppo", resources).success
        assert refs(folder) == single_key_refs[name]  # same artifacts: nothing crossed partitions
    assert latest("evaluation")["algorithm"] in ("sft", "nll", "a_lol", "dpo", "pro", "ppo", "grpo", "fg_ppo")


def test_changing_one_stage_rebuilds_only_it_and_its_descendants(run):
    _, resources = run
    changed = MICRO + ["reference_value.lr=0.01"]
    assert run_task("demo", changed, ["models", "reference_value"], resources=resources) == 0
    assert latest("sft_model")["cached"] is True
    assert latest("reference_value")["cached"] is False


def test_a_plain_stage_command_writes_the_artifact_dagster_wrote(run, tmp_path):
    """``python -m rlhf_core.cli.stage`` needs no Dagster: same inputs, same key, same content."""
    import json
    import subprocess
    import sys

    from rlhf_core.config import load_config, task_config_path, to_dict

    root, _ = run
    store = root / "artifacts" / "demo"
    (policy,) = (store / "policy" / "nll").glob("[!.]*")
    (dagster_made,) = (store / "generations" / "nll").glob("[!.]*")
    resolved = tmp_path / "resolved.json"
    resolved.write_text(json.dumps(to_dict(load_config(task_config_path("demo"), MICRO))))
    out = subprocess.run(
        [sys.executable, "-m", "rlhf_core.cli.stage", "generations", "--config", str(resolved),
         "--out", str(tmp_path / "store"), "--arg", "algorithm=nll", "--input", f"policy={policy}",
         "--input", f"prompts={latest('sft_data')['artifact']}"],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    made = json.loads(out.stdout.strip().splitlines()[-1])
    assert made["cached"] is False and Path(made["artifact"]).name == dagster_made.name  # the same key
    assert made["content_hash"] == json.loads((dagster_made / "meta.json").read_text())["content_hash"]


def test_the_documented_demo_commands_run_on_the_built_graph(run, capsys):
    """README's ``rlhf run demo --select rl``, ``--select sft_model``, ``rlhf leaderboard demo`` and
    ``rlhf status demo``, on the micro config (the store has every artifact: they are found, not rebuilt)."""
    capsys.readouterr()
    for select in ("rl", "sft_model"):
        assert main(["run", "demo", "--select", select, "--verbose", *micro_args()]) == 0
    steps = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(steps) == 11 and all(": reused (" in line for line in steps), steps  # rl: 1 + 8 + 1; sft_model: 1
    assert main(["leaderboard", "demo"]) == 0
    assert "Leaderboard (" in capsys.readouterr().out
    assert main(["status", "demo", "--verbose", *micro_args()]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(", 0 stale, 0 missing")
