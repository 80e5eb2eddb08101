"""The ref IO manager refuses to write a ref that does not match the partitions a run targets."""
import dagster as dg
import pytest

from resources.io_manager import RefIOManager
from rlhf_core.store import ArtifactRef
from tests.dagster.ranges import materialize_range

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])


def ref(name: str) -> ArtifactRef:
    return ArtifactRef(path=f"/store/{name}", content_hash=name, key=name)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def run(asset, tmp_path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], resources={"io_manager": RefIOManager(root=str(tmp_path))},
                          raise_on_error=False, **kwargs)


def test_a_range_run_writes_one_ref_per_partition(instance):
    @dg.asset(partitions_def=PARTS)
    def x(context):
        return {p: ref(p) for p in context.partition_keys}

    result = materialize_range([x], x.key, "a", "b", {"io_manager": RefIOManager(root=str(instance))})
    assert result.success
    assert sorted(p.name for p in (instance / "_refs" / "x").iterdir()) == ["a.json", "b.json"]
    assert ArtifactRef.from_json((instance / "_refs" / "x" / "b.json").read_text()).content_hash == "b"


def test_a_partitioned_asset_must_return_exactly_its_partitions(instance):
    @dg.asset(partitions_def=PARTS)
    def x(context):
        return {"a": ref("a")}  # the run targets a and b

    tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "b"}
    result = run(x, instance, tags=tags)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "targets partitions ['a', 'b']" in message and "got ['a']" in message
    assert not (instance / "_refs" / "x").exists()


def test_a_partitioned_asset_never_writes_an_unpartitioned_ref(instance):
    @dg.asset(partitions_def=PARTS)
    def x():
        return ref("a")

    result = run(x, instance, partition_key="a")
    assert not result.success
    assert not (instance / "_refs" / "x").exists()


def test_reading_a_partition_that_was_never_written_names_it(instance):
    @dg.asset(partitions_def=PARTS)
    def x(context):
        return {p: ref(p) for p in context.partition_keys}

    @dg.asset(partitions_def=PARTS)
    def y(context, x):
        return {p: x[p] for p in context.partition_keys}

    assert run(x, instance, partition_key="a").success
    result = dg.materialize([x, y], selection=[y.key], partition_key="b", raise_on_error=False,
                            resources={"io_manager": RefIOManager(root=str(instance))})
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "x [b] has not been materialized" in message


def test_tables_become_typed_dagster_tables_with_the_legend_as_column_descriptions():
    import pandas as pd

    from resources.metadata import to_dagster

    rows = pd.DataFrame({"algorithm": ["dpo", "sft"], "gold": [0.71234567, float("nan")], "n": [40, 40],
                         "empty": [True, False]})
    meta = to_dagster({"table": rows, "legend": {"gold": "the judge", "n": "samples"}})
    table = meta["table"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [(c.name, c.type, c.description) for c in table.schema.columns] == [
        ("algorithm", "string", None), ("gold", "float", "the judge"), ("n", "int", "samples"), ("empty", "bool", None)]
    assert [r.data for r in table.records] == [{"algorithm": "dpo", "gold": 0.7123, "n": 40, "empty": True},
                                               {"algorithm": "sft", "gold": None, "n": 40, "empty": False}]
    assert [r.data for r in meta["legend"].records] == [{"column": "gold", "meaning": "the judge"},
                                                        {"column": "n", "meaning": "samples"}]
