"""Annotation in Dagster: incremental partitions, per-scorer staleness, the schedule and the sensor.

Runs the demo on the micro config of test_pipeline, then works on its annotation assets.
"""

import datetime
import json
import shutil

import dagster as dg
import pytest

# Dagster's staleness resolver and its test loading context are internal; the UI uses the same.
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from pipelines.runner import run_task
from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import load_config, task_config_path
from tests.dagster.ranges import materialize_range, ref_folder, refs
from tests.dagster.test_pipeline import MICRO

DAY = "2026-11-22"
SCORERS = ["rm", "gold", "length", "diversity", "rel_rm", "fact_rm", "holistic_rm"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotation")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    overrides = MICRO + [f"annotation.incoming.folder={root / 'incoming'}"]
    resources = build_resources(str(root / "artifacts"))
    assert run_task("demo", overrides, ["data", "models", "reward_model", "annotation"], resources=resources) == 0
    yield root, overrides, resources
    mp.undo()


def definitions(overrides, resources):
    task_defs = build_task_definitions(load_config(task_config_path("demo"), overrides))
    return dg.Definitions.merge(task_defs, dg.Definitions(resources=resources))


def materialization(key: str, partition: str) -> dg.AssetMaterialization:
    records = (
        dg.DagsterInstance.get()
        .fetch_materializations(
            dg.AssetRecordsFilter(dg.AssetKey(["demo", key]), asset_partitions=[partition]), limit=1
        )
        .records
    )
    return records[0].asset_materialization


def latest(key: str, partition: str) -> dict:
    return {k: v.value for k, v in materialization(key, partition).metadata.items()}


def stale_scorers(overrides, resources) -> list[str]:
    """The scorers whose shard-0 annotation the UI shows as stale (Dagster's own resolver)."""
    instance = dg.DagsterInstance.get()
    graph = definitions(overrides, resources).resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    key = dg.AssetKey(["demo", "annotated_responses"])
    return [s for s in SCORERS if resolver.get_status(key, f"{s}|0") == StaleStatus.STALE]


def test_every_scorer_and_shard_is_a_partition_with_counts_and_a_histogram(env):
    for scorer in SCORERS:
        for shard in ("0", "1"):
            meta = latest("annotated_responses", f"{scorer}|{shard}")
            assert meta["scored"] + meta["reused"] + meta["quarantined"] == meta["input_rows"] > 0
            assert "histogram" in meta
    total = sum(latest("annotated_responses", f"gold|{s}")["input_rows"] for s in "01")
    rewards = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(["demo", "rewards"]))
    assert rewards.asset_materialization.metadata["input_rows"].value == total


def test_scorers_and_annotation_under_a_backfill_range_write_one_ref_per_partition(env):
    root, overrides, resources = env
    assets = definitions(overrides, resources).assets
    for name, (start, end) in {
        "reward_scorers": ("rm", SCORERS[-1]),
        "annotated_responses": ("rm|0", f"{SCORERS[-1]}|1"),
    }.items():
        folder = ref_folder(root, assets, name)
        single_key_refs = refs(folder)
        shutil.rmtree(folder)
        assert materialize_range(assets, dg.AssetKey(["demo", name]), start, end, resources).success
        assert refs(folder) == single_key_refs
    specs = load_config(task_config_path("demo"), overrides).annotation.scorers
    for scorer in SCORERS:  # each partition keeps its own metadata
        assert latest("annotated_responses", f"{scorer}|1")["scorer"] == specs[scorer].scorer


def test_a_second_run_over_unchanged_rows_scores_nothing(env):
    _, overrides, resources = env
    assert run_task("demo", overrides, ["annotation"], resources=resources) == 0
    for scorer in SCORERS:
        meta = latest("annotated_responses", f"{scorer}|0")
        assert meta["scored_this_run"] == 0 and meta["reused_this_run"] == meta["input_rows"] - meta["quarantined"]


def test_changing_one_scorer_makes_only_its_partitions_stale(env):
    _, overrides, resources = env
    changed = overrides + ["annotation.scorers.rm.params={max_length: 48}"]
    assert run_task("demo", changed, ["reward_scorers"], resources=resources) == 0
    assert stale_scorers(changed, resources) == ["rm"]

    assert run_task("demo", changed, ["annotated_responses"], resources=resources) == 0
    assert latest("annotated_responses", "rm|0")["scored_this_run"] > 0
    assert latest("annotated_responses", "gold|0")["scored_this_run"] == 0
    assert stale_scorers(changed, resources) == []


def write_day(root, date, rows):
    day = root / "incoming" / date
    day.mkdir(parents=True, exist_ok=True)
    with open(day / "batch.jsonl", "a") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def test_the_sensor_requests_every_scorer_for_a_day_whose_files_changed(env):
    root, overrides, resources = env
    (sensor,) = definitions(overrides, resources).sensors
    assert isinstance(sensor(dg.build_sensor_context()), dg.SkipReason)

    write_day(root, DAY, [{"prompt": "Question: Where does Vashqua live? Answer:", "completion": " In Pelo."}])
    result = sensor(dg.build_sensor_context())
    keys = sorted(str(r.partition_key) for r in result.run_requests)
    assert keys == sorted(f"{DAY}|{s}" for s in SCORERS)
    assert isinstance(sensor(dg.build_sensor_context(cursor=result.cursor)), dg.SkipReason)  # nothing new

    write_day(root, DAY, [{"prompt": "Question: Who?", "completion": " Nobody."}])
    again = sensor(dg.build_sensor_context(cursor=result.cursor))
    assert len(again.run_requests) == len(SCORERS)
    assert {r.run_key for r in again.run_requests}.isdisjoint({r.run_key for r in result.run_requests})


def test_the_daily_schedule_scores_yesterday_with_every_scorer(env):
    _, overrides, resources = env
    (schedule,) = definitions(overrides, resources).schedules
    when = datetime.datetime(2026, 11, 23, 1, tzinfo=datetime.timezone.utc)
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert sorted(str(r.partition_key) for r in requests) == sorted(f"2026-11-22|{s}" for s in SCORERS)
    early = datetime.datetime(2026, 11, 1, 1, tzinfo=datetime.timezone.utc)
    assert isinstance(schedule(dg.build_schedule_context(scheduled_execution_time=early)), dg.SkipReason)


def test_incoming_days_are_scored_incrementally_then_rewarded(env):
    root, overrides, resources = env
    defs = definitions(overrides, resources)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()  # eager acts on the latest day
    write_day(root, today, [{"prompt": "Question: Where? Answer:", "completion": f" In place {i}."} for i in range(3)])

    def score_day():
        for scorer in SCORERS:
            assert dg.materialize(
                list(defs.assets),
                selection=[dg.AssetKey(["demo", "annotated_incoming"])],
                partition_key=f"{today}|{scorer}",
                resources=resources,
                instance=dg.DagsterInstance.get(),
            ).success

    rewards = dg.AssetKey(["demo", "incoming_rewards"])
    before = dg.evaluate_automation_conditions(
        defs=defs, instance=dg.DagsterInstance.get(), asset_selection=dg.AssetSelection.assets(rewards)
    )
    assert before.total_requested == 0  # no scores yet
    score_day()
    assert latest("annotated_incoming", f"{today}|length")["scored_this_run"] == 3
    write_day(root, today, [{"prompt": "Question: Who? Answer:", "completion": " Nobody at all."}])
    score_day()
    meta = latest("annotated_incoming", f"{today}|length")
    assert (meta["scored_this_run"], meta["reused_this_run"]) == (1, 3)

    result = dg.evaluate_automation_conditions(
        defs=defs,
        instance=dg.DagsterInstance.get(),
        asset_selection=dg.AssetSelection.assets(rewards),
        cursor=before.cursor,
    )
    assert result.get_requested_partitions(rewards) == {today}  # every scorer is done: the reward follows

    assert dg.materialize(
        list(defs.assets),
        selection=[rewards],
        partition_key=today,
        resources=resources,
        instance=dg.DagsterInstance.get(),
    ).success
    assert latest("incoming_rewards", today)["kept_rows"] == 4


def test_a_backfill_range_of_incoming_partitions_scores_each_day_and_scorer(env):
    root, overrides, resources = env
    defs = definitions(overrides, resources)
    write_day(root, DAY, [{"prompt": "Question: Where? Answer:", "completion": " In a range."}])
    incoming = dg.AssetKey(["demo", "annotated_incoming"])
    assert materialize_range(defs.assets, incoming, f"{DAY}|rm", f"{DAY}|{SCORERS[-1]}", resources).success
    written = refs(ref_folder(root, defs.assets, "annotated_incoming"))
    assert {f"{DAY}|{s}" for s in SCORERS} <= set(written)
    for scorer in SCORERS:
        assert f"/annotated_incoming/{scorer}/{DAY}/" in json.loads(written[f"{DAY}|{scorer}"])["path"]
        assert latest("annotated_incoming", f"{DAY}|{scorer}")["input_rows"] >= 1
