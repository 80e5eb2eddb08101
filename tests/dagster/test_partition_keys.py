"""Keys per thing, not per registry: an edit re-keys exactly the partitions whose code or config it
touches, in every task config.

A partition's store key is its stage's ``key_version`` (declared config, the stage function's code,
the code of the registry entries its config names) hashed with its parents' content, so here "re-keyed"
is a changed ``key_version`` of one (task, stage, partition); what follows through content is the
asset-level lineage of ``test_invalidation``. Code edits are made in a copy of ``rlhf_core`` in a
subprocess that imports the copy: the hasher reads the edited file, ``codehash.forget`` drops what it
had read of it, and every partition of every task is keyed again.
"""

from __future__ import annotations

import ast
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.task_defs import build_task_definitions
from rlhf_core.config import load_config, tasks_dir
from rlhf_core.data.registry import BUILDERS, LOADERS
from rlhf_core.eval.evaluate import flat_summary
from rlhf_core.eval.registry import METRICS
from rlhf_core.rewards.base import SCORERS
from rlhf_core.stages import all_stages
from rlhf_core.stages.algorithms import ALGORITHMS
from rlhf_core.stages.rm_eval import within_prompt_pairs
from rlhf_core.stages.rm_kinds import RM_KINDS
from rlhf_core.train.value import fit_value_head

REPO = Path(__file__).resolve().parents[2]
TASKS = {p.stem: load_config(p) for p in sorted(tasks_dir().glob("*.yaml"))}
Partition = tuple[str, str, str]  # (task, stage, partition; "" for a stage with one key)


def partitions(task) -> list[tuple[str, list]]:
    """(stage, partition arguments) of every stage the task's assets run (their ``stage`` metadata)."""
    stages = all_stages()
    used = {
        getattr(m, "value", m)
        for a in build_task_definitions(task).assets
        for m in (a.metadata_by_key[k]["stage"] for k in a.keys)
    }
    return [(name, list(part)) for name in sorted(used) for part in stages[name].partitions(task)]


@pytest.fixture(scope="module")
def layout():
    return {name: partitions(task) for name, task in TASKS.items()}


KEYS_SCRIPT = """
import json, sys
from rlhf_core import codehash
from rlhf_core.config import load_config, tasks_dir
from rlhf_core.stages import all_stages

layout, edits = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
stages = all_stages()
tasks = {name: load_config(tasks_dir() / f"{name}.yaml") for name in layout}

def keys():
    return {f"{t}|{s}|{'/'.join(map(str, p))}": stages[s].key_version(tasks[t], *p)
            for t, parts in layout.items() for s, p in parts}

before, changed = keys(), {}
for edit in edits:
    path = edit["file"]
    source = open(path).read()
    open(path, "w").write(source[:edit["at"]] + edit["text"] + source[edit["at"]:])
    codehash.forget(edit["module"])
    after = keys()
    changed[edit["label"]] = sorted(k for k in before if after[k] != before[k])
    open(path, "w").write(source)
    codehash.forget(edit["module"])
assert keys() == before  # every edit undone: the keys are back
print(json.dumps(changed))
"""


def definition_edit(label: str, fn) -> dict:
    """A statement inserted at the top of the body of ``fn``'s top-level definition (a function or class)."""
    fn = inspect.unwrap(fn)
    path = Path(inspect.getsourcefile(fn)).resolve().relative_to(REPO)
    source = (REPO / path).read_text()
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == fn.__name__)
    first = node.body[0]
    lines = source.split("\n")
    at = sum(len(line) + 1 for line in lines[: first.lineno - 1])
    return {
        "label": label,
        "file": str(path),
        "module": fn.__module__,
        "at": at,
        "text": " " * first.col_offset + "_edited = 1\n",
    }


def append_edit(label: str, module: str) -> dict:
    """``_PROBE = 1`` appended to a module (what the issue measured on dialogrpt.py and pro.py)."""
    path = Path(*module.split(".")).with_suffix(".py")
    return {
        "label": label,
        "file": str(path),
        "module": module,
        "at": len((REPO / path).read_text()),
        "text": "\n_PROBE = 1\n",
    }


def changed_by(edits: list[dict], layout, tmp_path) -> dict[str, set[Partition]]:
    shutil.copytree(REPO / "rlhf_core", tmp_path / "rlhf_core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    (tmp_path / "edits.json").write_text(json.dumps(edits))
    out = subprocess.run(
        [sys.executable, "-c", KEYS_SCRIPT, "layout.json", "edits.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return {
        label: {tuple(k.split("|")) for k in keys}
        for label, keys in json.loads(out.stdout.strip().splitlines()[-1]).items()
    }


def named(layout, stage: str, chosen) -> set[Partition]:
    """The partitions of ``stage``, in every task, whose config ``chosen(task, partition)`` picks."""
    return {
        (t, s, "/".join(map(str, p)))
        for t, parts in layout.items()
        for s, p in parts
        if s == stage and chosen(TASKS[t], *p)
    }


def scorer_names(spec) -> set[str]:
    """The scorers a component's config names: its own and the one it wraps (``sentence_delta``'s base)."""
    wraps = getattr(SCORERS.get(spec.scorer), "wraps", None)
    return {spec.scorer, *([spec.params[wraps]] if wraps in spec.params else [])}


# Code that reaches a scorer by import rather than by its registered name re-keys with it too: stage
# functions that run it directly (every partition of the stage, or those a predicate picks), and
# scorers built on its class.
def every(*_) -> bool:
    return True


IMPORTED_BY = {
    # demo.gold.judge: the gold grades of the demo's ArmoRM objectives, and the gold probe
    "gold": {"reward_model": lambda t, n: t.reward_models[n].kind == "armo", "gold_probe": every},
    "reward_model": {"reward_model_eval": every, "reward_bench": every},  # trained_reward_model opens every RM
    "rm_logit": {"reward_model_eval": every, "reward_bench": every},  # ... as an rm_logit subclass
}
BUILT_ON = {"rm_logit": {"reward_model"}}  # SequenceRMScorer(RewardModelLogitScorer)


def grouped(registry) -> dict:
    """Each distinct entry (a trainer serves several algorithms) -> the names it is registered under."""
    out: dict = {}
    for name in registry.names():
        if inspect.getfile(registry.get(name)).startswith(str(REPO / "rlhf_core")):  # not a test's own entry
            out.setdefault(registry.get(name), []).append(name)
    return out


def test_a_code_edit_rekeys_exactly_the_partitions_that_run_it_in_every_task(layout, tmp_path):
    edits, expected = [], {}

    def expect(edit: dict, partitions: set[Partition]) -> None:
        edits.append(edit)
        expected[edit["label"]] = partitions

    for scorer, names in grouped(SCORERS).items():
        users = {*names, *(b for n in names for b in BUILT_ON.get(n, ()))}
        expect(
            definition_edit(f"scorer {names}", scorer),
            named(layout, "reward_scorer", lambda t, c: scorer_names(t.annotation.scorers[c]) & users)
            | named(layout, "build_dataset", lambda t, d: t.datasets[d].options.get("scorer") in users)
            | {p for n in names for stage, pick in IMPORTED_BY.get(n, {}).items() for p in named(layout, stage, pick)},
        )
    for loader, names in grouped(LOADERS).items():
        expect(
            definition_edit(f"loader {names}", loader),
            named(layout, "load_source", lambda t, s: t.sources[s].loader in names),
        )
    for builder, names in grouped(BUILDERS).items():
        expect(
            definition_edit(f"builder {names}", builder),
            named(layout, "build_dataset", lambda t, d: t.datasets[d].builder in names),
        )
    entries = [ALGORITHMS.get(name) for name in ALGORITHMS.names()]
    for trainer in {e.train for e in entries}:
        names = {e.name for e in entries if e.train is trainer}
        expect(definition_edit(f"trainer {sorted(names)}", trainer), named(layout, "policy", lambda t, a: a in names))
    # A loss is reached through the trainers that minimise it; SFT trains with the offline family's nll.
    also = {"offline_loss": named(layout, "sft_model", lambda t: True)}
    for loss in {e.loss for e in entries}:
        names = {e.name for e in entries if e.loss is loss}
        expect(
            definition_edit(f"loss {loss.__name__}", loss),
            named(layout, "policy", lambda t, a: a in names) | also.get(loss.__name__, set()),
        )
    # Each reward-model kind's trainer re-keys the RMs of that kind (their descendants follow by content).
    for kind in RM_KINDS.names():
        expect(
            definition_edit(f"rm kind {kind}", RM_KINDS.get(kind).train),
            named(layout, "reward_model", lambda t, n, k=kind: t.reward_models[n].kind == k),
        )
    # The measurements: one statement appended to a scorer's module and to PRO's trainer.
    dialogrpt = {n for n in SCORERS.names() if SCORERS.get(n).__module__ == "rlhf_core.rewards.dialogrpt"}
    expect(
        append_edit("append to rewards/dialogrpt.py", "rlhf_core.rewards.dialogrpt"),
        named(layout, "reward_scorer", lambda t, c: bool(scorer_names(t.annotation.scorers[c]) & dialogrpt)),
    )
    expect(
        append_edit("append to train/pro.py", "rlhf_core.train.pro"), named(layout, "policy", lambda t, a: a == "pro")
    )
    # Code a stage imports re-keys every partition of that stage, and of no other.
    # Each metric re-keys the evaluation of the tasks that name it, and nothing else.
    for metric in METRICS.names():
        expect(
            definition_edit(f"metric {metric}", METRICS.get(metric)),
            named(layout, "evaluation", lambda t, m=metric: m in {s.metric for s in t.evaluation.metrics.values()}),
        )
    for fn, stage in (
        (fit_value_head, "reference_value"),
        (flat_summary, "evaluation"),
        (within_prompt_pairs, "reward_model_eval"),
    ):
        expect(definition_edit(fn.__name__, fn), named(layout, stage, lambda *_: True))

    changed = changed_by(edits, layout, tmp_path)
    assert len(edits) >= len(SCORERS.names()) // 2 + len(LOADERS.names()) // 2
    wrong = {
        label: (sorted(changed[label] - p), sorted(p - changed[label]))
        for label, p in expected.items()
        if changed[label] != p
    }
    assert not wrong, json.dumps(wrong, indent=1)
    assert changed["append to train/pro.py"] and changed["flat_summary"]  # the checks above are not vacuous
    kinds = {k for t in TASKS.values() for k in (s.kind for s in t.reward_models.values())}
    assert all(changed[f"rm kind {k}"] for k in kinds) and len(kinds) >= 5
    assert any(s == "reward_scorer" for label in expected if label.startswith("scorer") for _, s, _ in changed[label])


def partition_keys(task) -> dict[Partition, str]:
    stages = all_stages()
    return {(task.task, s, "/".join(map(str, p))): stages[s].key_version(task, *p) for s, p in partitions(task)}


def rekeyed(task, overrides: list[str]) -> set[Partition]:
    before = partition_keys(task)
    after = partition_keys(load_config(tasks_dir() / f"{task.task}.yaml", overrides))
    return {k for k in before if after[k] != before[k]}


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.policy is not None])
def test_dpo_beta_rekeys_only_the_dpo_partitions(name):
    task = TASKS[name]
    dpo = {(name, "policy", a) for a in task.policy.algorithms if a in ("dpo", "dpo_ref_free")}
    assert rekeyed(task, [f"policy.dpo_beta={task.policy.dpo_beta * 2}"]) == dpo


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.policy is not None])
def test_ppo_clip_rekeys_only_the_algorithms_that_clip(name):
    """The offline family shares ``policy``'s settings, but each partition reads only its loss's: eps
    clips the importance weight of r_lol, a_lol and a_lol_seq; nll, dpo and the rest never read it."""
    task = TASKS[name]
    clipped = {(name, "policy", a) for a in task.policy.algorithms if a in ("r_lol", "a_lol", "a_lol_seq")}
    assert rekeyed(task, [f"policy.ppo_clip={0.3 if task.policy.ppo_clip != 0.3 else 0.5}"]) == clipped


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.policy is not None])
def test_kl_beta_and_sampling_rekey_only_the_offline_algorithms_that_read_them(name):
    task, offline = TASKS[name], {"nll", "wbc", "r_gold", "r_lol", "a_lol", "a_lol_ref_free", "a_lol_seq", "a_lol_kl"}
    with_kl = {(name, "policy", a) for a in task.policy.algorithms if a in ("r_lol", "a_lol", "a_lol_kl")}
    assert rekeyed(task, [f"policy.kl_beta={task.policy.kl_beta + 0.5}"]) == with_kl
    sampled = {(name, "policy", a) for a in task.policy.algorithms if a in offline}
    other = "uniform" if task.policy.sampling == "priority" else "priority"
    assert rekeyed(task, [f"policy.sampling={other}"]) == sampled


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.annotation is not None])
def test_one_scorers_parameters_rekey_only_that_scorers_partition(name):
    """Its annotations, R and everything after follow by content: the scorer artifact holds the parameters."""
    for component in TASKS[name].annotation.scorers:
        assert rekeyed(TASKS[name], [f"annotation.scorers.{component}.params._probe=1"]) == {
            (name, "reward_scorer", component)
        }, component
