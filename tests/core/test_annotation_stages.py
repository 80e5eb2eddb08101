"""Annotation stages on the store: shards, incremental incoming days, scorer identity, the final reward."""

import json
import math

import pandas as pd
import pytest
import yaml

from rlhf_core.config import load_config
from rlhf_core.rewards.base import ScorerLoadError
from rlhf_core.stages import annotation as stages
from rlhf_core.stages.base import table
from rlhf_core.store import ArtifactStore, write_table

ROWS = pd.DataFrame(
    {
        "id": [f"r{i}" for i in range(8)],
        "split": ["train"] * 6 + ["test"] * 2,
        "prompt": ["Q?"] * 8,
        "completion": [" one", " two words", " three more words", " the river", " a b c d", " stone", " x y", "  "],
    }
)


def task_config(tmp_path, **scorer_overrides):
    scorers = {"length": {"scorer": "length", "weight": 2.0}, "div": {"scorer": "diversity", "weight": 0.0}}
    scorers.update(scorer_overrides)
    cfg = {
        "task": "t",
        "seed": 0,
        "annotation": {
            "data": "rows",
            "shards": 2,
            "scorers": scorers,
            "incoming": {"folder": str(tmp_path / "incoming"), "start_date": "2026-11-01"},
        },
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


@pytest.fixture
def env(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = store.build("t", "rows", None, {"rows": 1}, lambda out, _: write_table(ROWS, out / "table.parquet") or {})
    return task_config(tmp_path), store, data


def scorer(task, store, data, name):
    return stages.reward_scorer(task, store, name, {"data": data}, {})[0]


def test_shards_split_the_rows_exactly_once_and_a_rerun_scores_nothing(env):
    task, store, data = env
    length = scorer(task, store, data, "length")
    tables, metas = [], []
    for shard in (0, 1):
        ref, meta = stages.annotate_shard(task, store, "length", shard, data, length)
        tables.append(table(ref))
        metas.append(meta)
    scored = pd.concat(tables)
    quarantined = sum(m["quarantined"] for m in metas)
    assert quarantined == 1  # the blank completion, with its reason
    assert sorted(scored["row_id"]) == [f"r{i}" for i in range(7)]
    assert dict(zip(scored["row_id"], scored["score"]))["r2"] == 3.0
    assert all(m["scored_this_run"] == m["scored"] for m in metas)

    ref, again = stages.annotate_shard(task, store, "length", 0, data, length)
    assert again["cached"] and again["scored_this_run"] == 0
    assert again["reused_this_run"] == metas[0]["scored"]


def test_an_incoming_day_scores_only_rows_it_has_not_seen(env, tmp_path):
    task, store, data = env
    length = scorer(task, store, data, "length")
    day = tmp_path / "incoming" / "2026-11-22"
    day.mkdir(parents=True)
    lines = [{"prompt": "Q", "completion": " a b"}, {"prompt": "Q", "completion": " c"}, "{bad json"]
    (day / "batch.jsonl").write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines))
    _, first = stages.annotate_incoming(task, store, "length", "2026-11-22", length)
    assert (first["scored_this_run"], first["reused_this_run"], first["input_quarantined"]) == (2, 0, 1)

    with open(day / "batch.jsonl", "a") as fh:
        fh.write("\n" + json.dumps({"prompt": "Q", "completion": " d e f"}))
    ref, second = stages.annotate_incoming(task, store, "length", "2026-11-22", length)
    assert (second["scored_this_run"], second["reused_this_run"]) == (1, 2)
    assert sorted(table(ref)["score"]) == [1.0, 2.0, 3.0]

    _, empty = stages.annotate_incoming(task, store, "length", "2026-11-23", length)
    assert (empty["input_rows"], empty["scored_this_run"]) == (0, 0)


def test_a_scorer_is_identified_by_its_own_spec_only(env, tmp_path):
    task, store, data = env
    before = {n: scorer(task, store, data, n).content_hash for n in ("length", "div")}
    reweighted = task_config(tmp_path, length={"scorer": "length", "weight": 5.0})
    assert scorer(reweighted, store, data, "length").content_hash == before["length"]  # weights are not identity
    changed = task_config(tmp_path, div={"scorer": "length", "weight": 0.0})
    after = {n: scorer(changed, store, data, n).content_hash for n in ("length", "div")}
    assert after["length"] == before["length"]
    assert after["div"] != before["div"]


def test_a_scorer_that_cannot_load_fails_naming_its_component(env, tmp_path):
    _, store, data = env
    task = task_config(tmp_path, fluent={"scorer": "fluency", "params": {"model": str(tmp_path / "nowhere")}})
    with pytest.raises(ScorerLoadError, match="'fluent': scorer 'fluency' failed to load"):
        stages.reward_scorer(task, store, "fluent", {"data": data}, {})


def test_the_reward_is_the_weighted_sum_and_rows_missing_a_score_are_quarantined(env):
    task, store, data = env
    refs = {}
    for name in ("length", "div"):
        ref = scorer(task, store, data, name)
        refs[name] = [stages.annotate_shard(task, store, name, s, data, ref)[0] for s in (0, 1)]
    ref, meta = stages.combine_rewards(task, store, "rewards", None, refs, stages.annotation_rows(data))
    out = table(ref).set_index("row_id")
    assert out.loc["r2", "reward"] == 2.0 * 3.0  # length weight 2, diversity weight 0
    assert (out["reward"] == 2.0 * out["length"]).all()
    assert meta["quarantined_rows"] == 1 and "r7" not in out.index
    assert out.loc["r2", "div"] > 0  # reported, not rewarded
    assert table(ref).columns[:4].tolist() == ["row_id", "split", "prompt", "completion"]
    assert set(meta["correlations"]["component"]) == {"length", "div"}


def test_a_component_transform_applies_before_its_weight(env, tmp_path):
    _, store, data = env
    task = task_config(tmp_path, length={"scorer": "length", "weight": 2.0, "transform": "sigmoid"})
    ref = scorer(task, store, data, "length")
    shards = [stages.annotate_shard(task, store, "length", s, data, ref)[0] for s in (0, 1)]
    div = scorer(task, store, data, "div")
    divs = [stages.annotate_shard(task, store, "div", s, data, div)[0] for s in (0, 1)]
    out, _ = stages.combine_rewards(
        task, store, "rewards", None, {"length": shards, "div": divs}, stages.annotation_rows(data)
    )
    rewards = table(out).set_index("row_id")
    assert rewards.loc["r2", "reward"] == pytest.approx(2.0 / (1.0 + math.exp(-3.0)))  # 2 * sigmoid(3 words)
    assert rewards.loc["r2", "length"] == 3.0  # the raw score is kept


def test_a_stage_reads_only_what_it_declares(env, tmp_path):
    from rlhf_core.stages.base import ConfigView, UndeclaredConfigError

    task, _, _ = env
    view = ConfigView(task, frozenset({"annotation.scorers.length.weight"}), "probe")
    assert view.annotation.scorers["length"].weight == 2.0
    with pytest.raises(UndeclaredConfigError, match="annotation.scorers.length.scorer"):
        view.annotation.scorers["length"].scorer
    with pytest.raises(UndeclaredConfigError, match="'seed'"):
        view.seed


def test_rows_holding_lists_combine_and_their_lists_are_part_of_the_cache_key(tmp_path):
    # [CRS]'s absolute_rm rows keep each reply's conversation prefix as a list of turns.
    store = ArtifactStore(tmp_path / "artifacts")
    rows = ROWS.assign(prefix=[["Q?", f"turn {i}"] for i in range(8)])
    data = store.build("t", "rows", None, {"rows": 2}, lambda out, _: write_table(rows, out / "table.parquet") or {})
    task = task_config(tmp_path)
    refs = {}
    for name in ("length", "div"):
        ref = scorer(task, store, data, name)
        refs[name] = [stages.annotate_shard(task, store, name, s, data, ref)[0] for s in (0, 1)]
    read = stages.annotation_rows(data)
    out, _ = stages.combine_rewards(task, store, "rewards", None, refs, read)
    assert table(out).set_index("row_id").loc["r2", "prefix"].tolist() == ["Q?", "turn 2"]
    edited = read.copy()
    edited.at[0, "prefix"] = ["Q?", "another turn"]
    assert stages.rows_fingerprint(edited) != stages.rows_fingerprint(read)
    again, meta = stages.combine_rewards(task, store, "rewards", None, refs, edited)
    assert not meta["cached"] and again.key != out.key
