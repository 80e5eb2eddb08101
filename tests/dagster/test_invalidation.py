"""Keys that cannot miss anything: a config change or a code change re-keys exactly the stages that
read it and their descendants, and Dagster's stale status agrees with the store.

Every asset's Dagster code version is its stage's version (declared config + code hash); its store
key hashes that version with its parents' content. So "new key" here is the version, propagated
down the asset graph the way content hashes propagate (``lineage``).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.task_defs import build_task_definitions
from rlhf_core.config import ConfigError, load_config, tasks_dir, to_dict
from rlhf_core.stages import annotation, data, evaluation, judge, models, reward_bench, reward_models, rl, rm_eval

TASKS = sorted(p.stem for p in tasks_dir().glob("*.yaml"))
CANDIDATES = {str: ["sft", "scratch", "priority", "uniform", "sigmoid", "identity"]}


def declarations(task) -> dict[str, list[str]]:
    """Asset name -> the config paths its stage declares (mirrors the asset factories)."""
    out = {f"raw_{n}": data.load_source.reads(task, n) for n in task.sources}
    out |= {n: data.build_dataset.reads(task, n) for n in task.datasets}
    if task.sft:
        out |= {"tokenizer": models.tokenizer.reads(task), "sft_model": models.sft_model.reads(task)}
    if task.reward_models:  # partitioned by RM name: the union of the partitions' reads
        for asset, stage in (("reward_model", reward_models.reward_model), ("reward_model_eval", rm_eval.reward_model_eval)):
            out[asset] = sorted({p for name in task.reward_models for p in stage.reads(task, name)})
        out["reward_models"] = rm_eval.reward_model_board.reads(task)
        if task.reward_model_eval and task.gold and task.sft:
            out["gold_probe"] = rm_eval.gold_probe.reads(task)
        if task.reward_bench:
            out["reward_bench"] = reward_bench.reward_bench.reads(task)
    if task.annotation:
        out["reward_scorers"] = annotation.reward_scorer.reads(task)
        if task.annotation.data:
            out |= {"annotated_responses": annotation.annotate_shard.reads(task),
                    "rewards": annotation.combine_rewards.reads(task)}
        if task.annotation.incoming:
            out |= {"annotated_incoming": annotation.annotate_incoming.reads(task),
                    "incoming_rewards": annotation.combine_rewards.reads(task)}
    if task.reference_value and task.policy:
        out["reference_value"] = rl.reference_value.reads(task)
    if task.policy and task.evaluation:
        out |= {"policy": rl.policy.reads(task), "generations": evaluation.generations.reads(task),
                "evaluation": evaluation.evaluation.reads(task), "leaderboard": evaluation.leaderboard.reads(task)}
        if task.evaluation.judge:
            out["judge_win_rates"] = judge.judge_win_rates.reads(task)
    return out


def graph(task) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Asset name -> Dagster code version, and asset name -> parent asset names."""
    defs = build_task_definitions(task)
    versions, parents = {}, {}
    for asset in defs.assets:
        for key in asset.keys:
            versions[key.path[-1]] = asset.code_versions_by_key[key]
            parents[key.path[-1]] = {k.path[-1] for k in asset.keys_by_input_name.values()}
    return versions, parents


def lineage(versions: dict[str, str], parents: dict[str, set[str]]) -> dict[str, str]:
    memo: dict[str, str] = {}

    def key(name: str) -> str:
        if name not in memo:
            up = sorted(key(p) for p in parents[name] if p in versions)
            memo[name] = hashlib.sha256(json.dumps([versions[name], up]).encode()).hexdigest()
        return memo[name]

    return {name: key(name) for name in versions}


def descendants(names: set[str], parents: dict[str, set[str]]) -> set[str]:
    out = set(names)
    while True:
        more = {a for a, ps in parents.items() if ps & out} - out
        if not more:
            return out
        out |= more


def leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    elif node is not None:
        yield path, node


def changed_values(value):
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return [value + 0.5, value / 2]
    return [value + "x", *[c for c in CANDIDATES[str] if c != value]]


def set_leaf(raw, path, value):
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def covers(read: str, leaf: str) -> bool:
    return leaf == read or leaf.startswith(read + ".")


@pytest.mark.parametrize("name", TASKS)
def test_each_config_leaf_rekeys_exactly_its_readers_and_their_descendants(name, tmp_path):
    task = load_config(tasks_dir() / f"{name}.yaml")
    raw = to_dict(task)  # every leaf, defaults included
    versions, parents = graph(task)
    keys = lineage(versions, parents)
    declared = declarations(task)
    assert set(declared) == set(versions)
    unchangeable = []
    for path, value in leaves(raw):
        if path == ("task",):
            continue  # the task's name is the store's first path component, not part of a key
        leaf = ".".join(map(str, path))
        for new in changed_values(value):
            edited = json.loads(json.dumps(raw))
            set_leaf(edited, path, new)
            (tmp_path / "t.yaml").write_text(yaml.safe_dump(edited))
            try:
                new_task = load_config(tmp_path / "t.yaml")
                new_versions, _ = graph(new_task)
            except (ConfigError, ValueError, KeyError, TypeError):
                continue  # not a valid value here; try the next one
            break
        else:
            unchangeable.append(leaf)
            continue
        readers = {a for a, reads in declarations(new_task).items() if any(covers(r, leaf) for r in reads)}
        common = set(versions) & set(new_versions)  # a leaf that names partitions may add or drop assets
        assert {a for a in common if new_versions[a] != versions[a]} == readers & common, leaf
        new_keys = lineage({a: new_versions[a] for a in common}, parents)
        assert {a for a in common if new_keys[a] != keys[a]} == descendants(readers, parents) & common, leaf
    # Only a leaf with no other valid value may be skipped (e.g. a loader name with one loader).
    assert len(unchangeable) <= len(list(leaves(raw))) // 4, unchangeable


CODE_SCRIPT = """
import json
from rlhf_core.codehash import code_hash
from rlhf_core.stages import annotation, data, evaluation, judge, models, reward_bench, reward_models, rl, rm_eval
from rlhf_core.stages.base import Stage
stages = [v for m in (annotation, data, evaluation, models, reward_bench, reward_models, rl, rm_eval) for v in vars(m).values()
          if isinstance(v, Stage)]
print(json.dumps({s.name: code_hash(s) for s in stages}))
"""


def code_versions(root: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-c", CODE_SCRIPT], cwd=root, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_editing_a_function_rekeys_exactly_the_stages_that_run_it(tmp_path):
    """Each stage's version includes ``code_hash`` of its function, so equal code hashes mean equal keys."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "rlhf_core", tmp_path / "rlhf_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = code_versions(tmp_path)
    assert len(before) == 18
    for module, function, expected in [
        ("rlhf_core/train/value.py", "fit_value_head", {"reference_value"}),
        ("rlhf_core/train/losses.py", "dpo_loss", {"policy"}),
        ("rlhf_core/train/losses.py", "offline_loss", {"sft_model", "policy"}),
        ("rlhf_core/eval/metrics.py", "distinct_n", {"evaluation"}),
        ("rlhf_core/stages/rm_eval.py", "within_prompt_pairs", {"reward_model_eval"}),
    ]:
        path = tmp_path / module
        source = path.read_text()
        body = source.index(":\n", source.index(f"def {function}(")) + 2
        path.write_text(source[:body] + "    _edited = 1\n" + source[body:])
        after = code_versions(tmp_path)
        assert {name for name in before if after[name] != before[name]} == expected, function
        path.write_text(source)


STALE_SCRIPT = """
import json, sys
import dagster as dg
from dagster._utils.test.data_versions import get_stale_status_resolver
from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core import codehash
from rlhf_core.config import load_config, tasks_dir

instance = dg.DagsterInstance.get()
resources = build_resources(sys.argv[1])
rows = []

def step(label, overrides=()):
    for cache in (codehash._module, codehash._scope, codehash._hash_from):
        cache.cache_clear()
    assets = list(build_task_definitions(load_config(tasks_dir() / "demo.yaml", list(overrides))).assets)
    world = dg.AssetKey(["demo", "raw_world"])
    status = get_stale_status_resolver(instance, assets).get_status(world).value
    result = dg.materialize(assets, selection=[world], instance=instance, resources=resources)
    meta = result.asset_materializations_for_node("demo__raw_world")[0].metadata
    rows.append([label, status, meta["cached"].value])

step("first")
step("unchanged")
step("config", ["world.n_entities=13"])
step("config again", ["world.n_entities=13"])
path = "rlhf_core/demo/world.py"
source = open(path).read()
body = source.index(":\\n", source.index("def make_facts(")) + 2
open(path, "w").write(source[:body] + "    _edited = 1\\n" + source[body:])
step("code", ["world.n_entities=13"])
step("code again", ["world.n_entities=13"])
print(json.dumps(rows))
"""


def test_dagster_stale_status_agrees_with_the_store(tmp_path):
    """STALE (or MISSING) in Dagster exactly when the store builds anew; FRESH exactly when it reuses."""
    repo = Path(__file__).resolve().parents[2]
    for folder in ("rlhf_core", "assets", "resources", "pipelines", "configs"):
        shutil.copytree(repo / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = subprocess.run([sys.executable, "-c", STALE_SCRIPT, str(tmp_path / "artifacts")], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert rows == [
        ["first", "MISSING", False],
        ["unchanged", "FRESH", True],
        ["config", "STALE", False],
        ["config again", "FRESH", True],
        ["code", "STALE", False],
        ["code again", "FRESH", True],
    ]
