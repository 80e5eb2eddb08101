"""End to end: the demo graph on a micro config, through Dagster, then the documented commands
that retrain it with other settings (on the same store: only what they change is built), one of
them interrupted as Ctrl-C would."""

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.runner import rebuild_closure, run_task
from pipelines.task_defs import build_task_definitions, run_plan
from resources import build_resources
from rlhf_core.config import load_config, task_config_path
from rlhf_core.store_verify import is_artifact, verify
from tests.dagster.documented import shown
from tests.dagster.ranges import materialize_range, ref_folder, refs

REPO = Path(__file__).resolve().parents[2]
MICRO = [
    "world.n_prompts={train: 40, val: 8, test: 8}",
    "world.malformed_rows=6",
    "tokenizer.vocab_size=300",
    "sft.model.init={n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}",
    "sft.train.epochs=1",
    *(
        f"reward_models.{n}.train.epochs=1"
        for n in ("bt", "holistic", "ranking", "absolute", "relevance", "factuality", "pair_pm", "armo")
    ),
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


def micro_command(argv: list[str]) -> list[str]:
    """A documented ``rlhf run|status TASK ...`` (argv after "rlhf") on the micro config: its
    overrides before the command's own flags, which win."""
    return [*argv[:2], *micro_args(), *argv[2:]]


@contextlib.contextmanager
def own_instance(root: Path):
    """A Dagster instance and an artifact store of their own under ``root``, for a module's fixture."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        mp.setenv("RLHF_ARTIFACTS", str(root / "artifacts"))
        yield root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    with own_instance(tmp_path_factory.mktemp("pipeline")) as root:
        resources = build_resources()
        assert main(["run", "demo", "--verbose", *micro_args()]) == 0  # the documented `rlhf run demo`, micro config
        yield root, resources


def latest(key: str, partition: str | None = None) -> dict:
    records = (
        dg.DagsterInstance.get()
        .fetch_materializations(
            dg.AssetRecordsFilter(dg.AssetKey(["demo", key]), asset_partitions=[partition] if partition else None),
            limit=1,
        )
        .records
    )
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def test_leaderboard_has_a_measured_row_per_algorithm(run):
    root, _ = run
    board = pd.read_csv(root / "artifacts" / "demo" / "leaderboard.csv")
    assert sorted(board["algorithm"]) == ["a_lol", "dpo", "fg_ppo", "grpo", "nll", "ppo", "pro", "sft"]
    for col in ("gold", "reward", "rm", "relevance", "length", "distinct-2"):
        assert board[col].notna().all()
        # every metric with its 95% interval over the 8 test prompts
        assert (board[f"{col}_lo"] <= board[col] + 1e-9).all() and (board[col] <= board[f"{col}_hi"] + 1e-9).all()
    assert (board["seeds"] == 1).all()
    # the demo's committed per-algorithm learning rates are named; the others train at the shared settings
    overrides = load_config(task_config_path("demo"), MICRO).policy.overrides
    settings = dict(zip(board["algorithm"], board["setting"]))
    assert {a: settings[a] for a in overrides} == {
        a: f"lr={o['lr']:g} (policy.overrides)" for a, o in overrides.items()
    }
    assert {s for a, s in settings.items() if a not in overrides} == {"shared"}


def test_gold_judge_win_rates_are_the_gold_scores_compared_pair_by_pair(run):
    """The judge machinery with the demo's gold judge: each algorithm's win, tie and loss rates against
    sft must be the shares of test prompts where its sample's gold score is above, equal to or below
    sft's, and the RM's agreement with the judge the share of decided prompts where it orders them alike."""
    judged = latest("judge_win_rates")
    rates = pd.read_parquet(Path(judged["artifact"]) / "table.parquet").set_index("model")
    agreement = pd.read_parquet(Path(judged["artifact"]) / "agreement.parquet").set_index("model")
    sft = pd.read_parquet(Path(latest("evaluation", "sft")["artifact"]) / "table.parquet")
    assert sorted(rates.index) == ["a_lol", "dpo", "fg_ppo", "grpo", "nll", "ppo", "pro"]
    for algorithm, row in rates.iterrows():
        assert row["baseline"] == "sft" and row["criterion"] == "score" and row["unparseable_share"] == 0
        ours = pd.read_parquet(Path(latest("evaluation", algorithm)["artifact"]) / "table.parquet")
        pairs = ours.merge(sft, on="id", suffixes=("", "_sft"))
        assert len(pairs) == row["pairs"] == 8
        diff = pairs["gold"] - pairs["gold_sft"]
        assert row["win_rate"] == pytest.approx((diff > 1e-12).mean()), algorithm
        assert row["tie_rate"] == pytest.approx((diff.abs() <= 1e-12).mean()), algorithm
        assert row["loss_rate"] == pytest.approx((diff < -1e-12).mean()), algorithm
        rm = np.sign(pairs["rm"] - pairs["rm_sft"])
        decided = (diff.abs() > 1e-12) & (rm != 0)
        expected = (np.sign(diff[decided]) == rm[decided]).mean() if decided.any() else float("nan")
        assert agreement.loc[algorithm, "agreement"] == pytest.approx(expected, nan_ok=True), algorithm


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
    assert board["name"].tolist() == [
        "absolute",
        "armo",
        "bt",
        "factuality",
        "holistic",
        "pair_pm",
        "ranking",
        "relevance",
    ]
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
    checks = [
        dg.AssetCheckKey(dg.AssetKey(["demo", asset]), name)
        for asset, name in [
            ("preference_pairs", "non_empty"),
            ("preference_pairs", "pairs_valid"),
            ("sft_data", "non_empty"),
        ]
    ]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(checks)
    for check in checks:
        record = latest[check]
        assert record.status.value in ("SUCCEEDED", "FAILED"), check  # it ran
        materialized = [
            e
            for e in instance.all_logs(record.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if e.dagster_event.asset_key == check.asset_key
        ]
        assert [e.step_key for e in materialized] == [record.event.step_key]  # evaluated in the asset's own step
    assert latest[checks[1]].status.value == "SUCCEEDED"


def test_an_unchanged_rerun_recomputes_nothing_and_writes_nothing_to_the_store(run):
    root, resources = run

    def files() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in (root / "artifacts").rglob("*")}

    before = files()
    assert run_task("demo", MICRO, [], resources=resources) == 0
    assert latest("sft_model")["cached"] is True
    assert latest("reward_model", "bt")["cached"] is True
    assert files() == before  # no ref, export or folder written: a read-only store would do


def test_rl_assets_under_a_backfill_range_write_and_read_one_ref_per_partition(run):
    root, resources = run
    assets = build_task_definitions(load_config(task_config_path("demo"), MICRO)).assets
    folders = {name: ref_folder(root, assets, name) for name in ("policy", "generations", "evaluation")}
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


def test_a_plain_stage_command_writes_the_artifact_dagster_wrote(run, tmp_path, capsys):
    """``python -m rlhf_core.cli.stage`` needs no Dagster: same inputs, same key, same content; with
    ``--rebuild`` it builds the artifact again where the store has it (as a launcher's ``--rebuild``)."""
    from rlhf_core.cli.stage import main as stage_main
    from rlhf_core.config import to_dict

    root, _ = run
    store = root / "artifacts" / "demo"
    (policy,) = (store / "policy" / "nll").glob("[!.]*")
    (dagster_made,) = (store / "generations" / "nll").glob("[!.]*")
    resolved = tmp_path / "resolved.json"
    resolved.write_text(json.dumps(to_dict(load_config(task_config_path("demo"), MICRO))))
    command = [
        "generations",
        "--config",
        str(resolved),
        "--arg",
        "algorithm=nll",
        "--input",
        f"policy={policy}",
        "--input",
        f"prompts={latest('sft_data')['artifact']}",
    ]
    out = subprocess.run(
        [sys.executable, "-m", "rlhf_core.cli.stage", *command, "--out", str(tmp_path / "store")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    made = json.loads(out.stdout.strip().splitlines()[-1])
    assert made["cached"] is False and Path(made["artifact"]).name == dagster_made.name  # the same key
    content_hash = json.loads((dagster_made / "meta.json").read_text())["content_hash"]
    assert made["content_hash"] == content_hash
    capsys.readouterr()  # (in its own store: a process rebuilds an artifact once, and later tests rebuild these)
    assert stage_main([*command, "--out", str(tmp_path / "store"), "--rebuild", "generations", "--verbose"]) == 0
    rebuilt = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rebuilt["cached"] is False and rebuilt["artifact"] == made["artifact"]
    assert rebuilt["content_hash"] == content_hash


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


def outcomes(out: str) -> dict[str, str]:
    """``{"asset [partition]": "built" | "reused" | "done"}`` from ``rlhf run``'s output (its lines
    naming one asset; a step of several prints each asset's own line before the step's)."""
    return dict(re.findall(r"^ *\[ *[\d.]+s\] (\w+(?: \[[^\]]+\])?): (\w+) \([\d.]+s\)$", out, re.M))


def stored_ref(root: Path, asset: str, partition: str | None = None, overrides: list[str] = MICRO) -> str:
    """The artifact path the IO manager hands downstream for an asset (partition) under a configuration."""
    assets = [a for s in run_plan(load_config(task_config_path("demo"), overrides)) for a in s.assets]
    ref = ref_folder(root, assets, asset) / f"{partition or '__all__'}.json"
    return json.loads(ref.read_text())["path"]


def test_ctrl_c_ends_a_retrain_in_one_line_and_the_same_command_resumes(run, tmp_path, capsys):
    """The demo YAML's ``rlhf run demo --set policy.train.lr=1e-3``, in a process sent SIGINT (as Ctrl-C
    does) once the policies' steps begin: exit 130, one ``interrupted`` line naming the step, no
    traceback, and a store that holds whole artifacts only. Run again, it finishes: every policy is
    trained at the new rate (a new key) where its algorithm reads ``policy.train`` and has no rate of its own,
    the rest and the SFT reference are found, not trained again."""
    root, _ = run
    argv = micro_command(shown("run demo --set policy.train.lr=1e-3"))
    algorithms = load_config(task_config_path("demo"), MICRO).policy.algorithms
    before = {a: stored_ref(root, "policy", a) for a in algorithms}
    sft = stored_ref(root, "sft_model")
    env = {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ["PATH"],
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_HOME": os.environ["DAGSTER_HOME"],
        "RLHF_ARTIFACTS": os.environ["RLHF_ARTIFACTS"],
    }
    with open(tmp_path / "stderr", "w") as stderr:  # a file: a full pipe would stall the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        out = []
        for line in proc.stdout:
            out.append(line)
            if "[sft]: " in line:  # the baseline's step is done: the first policy's step is starting
                proc.send_signal(signal.SIGINT)
                break
        out += proc.stdout.readlines()
        assert proc.wait(timeout=600) == 130, "".join(out)
    err = (tmp_path / "stderr").read_text()
    assert "Traceback" not in err and "FAILED" not in "".join(out), err
    said = [line for line in err.splitlines() if "interrupt" in line.lower()]
    assert said == [err.strip().splitlines()[-1]] and said[0].startswith("interrupted: "), err
    assert "run the same command again to resume" in said[0]
    store = root / "artifacts"
    assert not list(store.rglob(".tmp-*"))  # nothing half-written: no temporary directory or file left
    for meta in store.rglob("meta.json"):
        verify(meta.parent)  # every stored artifact is whole
    assert all(is_artifact(json.loads(ref.read_text())["path"]) for ref in (store / "_refs").rglob("*.json"))

    capsys.readouterr()
    assert main([*argv, "--verbose"]) == 0
    done = outcomes(capsys.readouterr().out)
    retrained = [*MICRO, "policy.train.lr=1e-3"]
    assert done["sft_model"] == "reused" and stored_ref(root, "sft_model", overrides=retrained) == sft
    # policy.train is the section of the offline and preference trainers (stages/algorithms.py): those get a new
    # key at the new rate, but for those the demo gives a rate of their own (policy.overrides); the online ones
    # (ppo, grpo, fg_ppo) read their own sections and are found as they were.
    from rlhf_core.stages.algorithms import ALGORITHMS

    own_rate = {a for a, o in load_config(task_config_path("demo"), MICRO).policy.overrides.items() if "lr" in o}
    reads_train = [a for a in algorithms if "policy.train" in ALGORITHMS.get(a).section and a not in own_rate]
    others = [a for a in algorithms if a not in reads_train]
    assert reads_train and others and done[f"policy [{reads_train[-1]}]"] == "built"
    assert all(stored_ref(root, "policy", a, retrained) != before[a] for a in reads_train)
    assert all(stored_ref(root, "policy", a, retrained) == before[a] for a in others)
    assert all(done[f"policy [{a}]"] == "reused" for a in others)


def test_rebuild_sft_model_builds_it_and_everything_downstream_again(run, capsys):
    """README's ``rlhf run demo --rebuild sft_model``: the store has every artifact, and yet the SFT
    reference and all that depends on it are built again (the launcher's stages too); the rest is found."""
    root, _ = run
    steps = run_plan(load_config(task_config_path("demo"), MICRO))
    forced = rebuild_closure("demo", steps, ["sft_model"])
    assert {"sft_model", "reward_model", "policy", "leaderboard"} <= forced and "tokenizer" not in forced
    stored = {d.name for d in (root / "artifacts" / "demo").iterdir() if d.is_dir()}
    assert stored <= {k.path[-1] for s in steps for k in s.keys}  # the store files artifacts under asset names
    capsys.readouterr()
    assert main([*micro_command(shown("run demo --rebuild sft_model")), "--verbose"]) == 0
    done = outcomes(capsys.readouterr().out)
    assert {name.split(" [")[0] for name in done} >= forced
    for name, outcome in done.items():
        if name == "policy [sft]":
            assert outcome == "done"  # the baseline passes the SFT reference on
        else:
            assert outcome == ("built" if name.split(" [")[0] in forced else "reused"), (name, outcome)


def test_the_algorithms_override_trains_exactly_the_listed_algorithms(run, capsys):
    """README's ``--set policy.algorithms='[nll, a_lol, a_lol_seq, dpo]' --set sft.train.epochs=8``: a
    longer-trained SFT reference, then those four (and the baseline), and a leaderboard of them alone."""
    root, _ = run
    argv = shown("run demo --set policy.algorithms=[nll, a_lol, a_lol_seq, dpo] --set sft.train.epochs=8")
    capsys.readouterr()
    assert main([*micro_command(argv), "--verbose"]) == 0
    done = outcomes(capsys.readouterr().out)
    listed = ["nll", "a_lol", "a_lol_seq", "dpo"]
    assert done["sft_model"] == "built"
    assert sorted(n for n in done if n.startswith("policy [")) == sorted(f"policy [{a}]" for a in ["sft", *listed])
    assert all(done[f"policy [{a}]"] == "built" for a in listed)
    board = pd.read_csv(root / "artifacts" / "demo" / "leaderboard.csv")
    assert sorted(board["algorithm"]) == sorted(["sft", *listed])


def test_seeds_and_a_sweep_train_as_partitions_and_the_board_reports_the_val_choice_on_test(run, capsys):
    """README's ``--set seeds='[1,2,3]'`` and ``--set 'policy.sweep=...'``, cut to dpo alone, 2 seeds
    and 2 learning rates: 8 dpo trials (x val and test) and 2 baseline trials, one board row each."""
    root, _ = run
    argv = [
        *micro_command(shown("run demo --set seeds=[1,2,3]")),
        "--set",
        "seeds=[1, 2]",
        "--set",
        "policy.algorithms=[dpo]",
        "--set",
        "policy.sweep={dpo: {lr: [1.0e-4, 5.0e-4]}}",
        "--verbose",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    done = outcomes(capsys.readouterr().out)
    trained = sorted(n for n in done if n.startswith("policy [dpo"))
    assert len(trained) == 8 and "policy [dpo@lr=0.0001@seed=2@split=val]" in trained
    # the val and test trials of one (lr, seed) are one policy: trained once, found once
    assert sorted(done[n] for n in trained).count("built") == 4
    board = pd.read_csv(root / "artifacts" / "demo" / "leaderboard.csv").set_index("algorithm")
    assert sorted(board.index) == ["dpo", "sft"] and (board["seeds"] == 2).all()
    sweep = pd.read_csv(Path(latest("leaderboard")["artifact"]) / "sweep.csv")
    best = sweep.loc[sweep["val_gold"].idxmax()]
    assert board.loc["dpo", "setting"] == f"{best['setting']} (best on val of 2)" and best["chosen"]
    trials = pd.read_csv(Path(latest("leaderboard")["artifact"]) / "trials.csv")
    reported = trials[(trials["algorithm"] == "dpo") & trials["split"].isna() & (trials["setting"] == best["setting"])]
    assert board.loc["dpo", "gold"] == pytest.approx(reported["gold"].mean(), abs=1e-4)
    assert board.loc["dpo", "gold_seed_std"] == pytest.approx(reported["gold"].std(ddof=1), abs=1e-4)
