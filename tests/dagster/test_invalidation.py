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
from rlhf_core.data.registry import BUILDERS, LOADERS
from rlhf_core.rewards.base import SCORERS

TASKS = sorted(p.stem for p in tasks_dir().glob("*.yaml"))
# Other values an enum-like string may take (a learning-rate schedule, a truncation side, a precision...).
CANDIDATES = {
    str: ["sft", "scratch", "priority", "uniform", "sigmoid", "identity", "cosine", "right", "after", "bf16", "seed"]
}
REGISTRIES = {"loader": LOADERS, "builder": BUILDERS, "scorer": SCORERS}


def graph(task) -> tuple[dict[str, str], dict[str, set[str]], dict[str, list[str]]]:
    """Asset name -> Dagster code version, parent asset names, and the config paths its stage
    declares (the asset's ``config_reads``, from the same declaration as its version)."""
    defs = build_task_definitions(task)
    versions, parents, reads = {}, {}, {}
    for asset in defs.assets:
        for key in asset.keys:
            versions[key.path[-1]] = asset.code_versions_by_key[key]
            parents[key.path[-1]] = {k.path[-1] for k in asset.keys_by_input_name.values()}
            reads[key.path[-1]] = _value(asset.metadata_by_key[key]["config_reads"])
    return versions, parents, reads


def _value(metadata):
    return getattr(metadata, "value", metadata)


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


def changed_values(value, path=()):
    registry = REGISTRIES.get(path[-1]) if path else None
    if registry is not None:  # a plug-in's name: the definitions refuse an unknown one, so another entry
        return [n for n in registry.names() if n != value][:3]
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


# Every leaf of every task takes minutes (the demo alone ~2.5): `make test` walks two graphs of different shapes,
# `make keys-check` all of them.
IN_MAKE_TEST = {"hh_rlhf", "rlhflow"}


@pytest.mark.parametrize("name", [t if t in IN_MAKE_TEST else pytest.param(t, marks=pytest.mark.keys) for t in TASKS])
def test_each_config_leaf_rekeys_exactly_its_readers_and_their_descendants(name, tmp_path):
    task = load_config(tasks_dir() / f"{name}.yaml")
    raw = to_dict(task)  # every leaf, defaults included
    versions, parents, _ = graph(task)
    keys = lineage(versions, parents)
    unchangeable = []
    for path, value in leaves(raw):
        if path == ("task",):
            continue  # the task's name is the store's first path component, not part of a key
        leaf = ".".join(map(str, path))
        for new in changed_values(value, path):
            edited = json.loads(json.dumps(raw))
            set_leaf(edited, path, new)
            (tmp_path / "t.yaml").write_text(yaml.safe_dump(edited))
            try:
                new_task = load_config(tmp_path / "t.yaml")
                new_versions, _, new_reads = graph(new_task)
            except (ConfigError, ValueError, KeyError, TypeError):
                continue  # not a valid value here; try the next one
            break
        else:
            unchangeable.append(leaf)
            continue
        readers = {a for a, reads in new_reads.items() if any(covers(r, leaf) for r in reads)}
        common = set(versions) & set(new_versions)  # a leaf that names partitions may add or drop assets
        assert {a for a in common if new_versions[a] != versions[a]} == readers & common, leaf
        new_keys = lineage({a: new_versions[a] for a in common}, parents)
        assert {a for a in common if new_keys[a] != keys[a]} == descendants(readers, parents) & common, leaf
    # Only a leaf with no other valid value may be skipped (e.g. a loader name with one loader).
    assert len(unchangeable) <= len(list(leaves(raw))) // 4, unchangeable


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
    codehash.forget("rlhf_core.demo.world")
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
    env = {
        "PYTHONPATH": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = subprocess.run(
        [sys.executable, "-c", STALE_SCRIPT, str(tmp_path / "artifacts")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
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
