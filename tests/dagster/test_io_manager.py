"""The ref IO manager files refs under configuration keys, refuses a ref that does not match the
partitions a run targets, and does not rewrite a ref that is already there."""

import dagster as dg
import pytest

from resources.io_manager import RefIOManager, config_key, with_config_keys
from rlhf_core.store import ArtifactRef
from tests.dagster.ranges import materialize_range

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])


def ref(name: str) -> ArtifactRef:
    return ArtifactRef(path=f"/store/{name}", content_hash=name, key=name)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def keyed(*assets: dg.AssetsDefinition) -> list[dg.AssetsDefinition]:
    return with_config_keys(list(assets))


def folder(root, asset: dg.AssetsDefinition):
    return RefIOManager(root=str(root)).folder(asset.key, config_key(asset, asset.key))


def run(asset, tmp_path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        keyed(asset), resources={"io_manager": RefIOManager(root=str(tmp_path))}, raise_on_error=False, **kwargs
    )


def test_a_configuration_key_follows_the_code_versions_upstream():
    def graph(x_version: str, y_version: str = "1") -> dict[str, str]:
        @dg.asset(code_version=x_version)
        def x():
            return ref("x")

        @dg.asset(code_version=y_version)
        def y(x):
            return x

        @dg.asset(code_version="1")
        def z():
            return ref("z")

        return {a.key.path[-1]: config_key(a, a.key) for a in keyed(x, y, z)}

    base = graph("1")
    assert graph("2")["y"] != base["y"] and graph("2")["z"] == base["z"]  # a parent's change reaches its children
    assert graph("1", "2")["x"] == base["x"]  # and nothing upstream
    assert graph("1") == base

    @dg.asset
    def unversioned():
        return ref("u")

    with pytest.raises(ValueError, match="has no code version"):
        keyed(unversioned)


def test_a_ref_already_written_is_not_written_again(instance):
    @dg.asset(code_version="1")
    def x():
        return ref("x")

    assert run(x, instance).success
    path = folder(instance, keyed(x)[0]) / "__all__.json"
    before = path.stat()
    assert run(x, instance).success  # a run that finds its artifact: nothing to write (a read-only store)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_range_run_writes_one_ref_per_partition(instance):
    @dg.asset(partitions_def=PARTS, code_version="1")
    def x(context):
        return {p: ref(p) for p in context.partition_keys}

    result = materialize_range(keyed(x), x.key, "a", "b", {"io_manager": RefIOManager(root=str(instance))})
    assert result.success
    written = folder(instance, keyed(x)[0])
    assert sorted(p.name for p in written.iterdir()) == ["a.json", "b.json"]
    assert ArtifactRef.from_json((written / "b.json").read_text()).content_hash == "b"


def test_a_partitioned_asset_must_return_exactly_its_partitions(instance):
    @dg.asset(partitions_def=PARTS, code_version="1")
    def x(context):
        return {"a": ref("a")}  # the run targets a and b

    tags = {"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "b"}
    result = run(x, instance, tags=tags)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "targets partitions ['a', 'b']" in message and "got ['a']" in message
    assert not (instance / "_refs" / "x").exists()


def test_a_partitioned_asset_never_writes_an_unpartitioned_ref(instance):
    @dg.asset(partitions_def=PARTS, code_version="1")
    def x():
        return ref("a")

    result = run(x, instance, partition_key="a")
    assert not result.success
    assert not (instance / "_refs" / "x").exists()


def test_reading_a_partition_that_was_never_written_names_it(instance):
    @dg.asset(partitions_def=PARTS, code_version="1")
    def x(context):
        return {p: ref(p) for p in context.partition_keys}

    @dg.asset(partitions_def=PARTS, code_version="1")
    def y(context, x):
        return {p: x[p] for p in context.partition_keys}

    assert run(x, instance, partition_key="a").success
    result = dg.materialize(
        keyed(x, y),
        selection=[y.key],
        partition_key="b",
        raise_on_error=False,
        resources={"io_manager": RefIOManager(root=str(instance))},
    )
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "x [b] has not been materialized" in message


def test_tables_become_typed_dagster_tables_with_the_legend_as_column_descriptions():
    import pandas as pd

    from resources.metadata import to_dagster

    rows = pd.DataFrame(
        {"algorithm": ["dpo", "sft"], "gold": [0.71234567, float("nan")], "n": [40, 40], "empty": [True, False]}
    )
    meta = to_dagster({"table": rows, "legend": {"gold": "the judge", "n": "samples"}})
    table = meta["table"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [(c.name, c.type, c.description) for c in table.schema.columns] == [
        ("algorithm", "string", None),
        ("gold", "float", "the judge"),
        ("n", "int", "samples"),
        ("empty", "bool", None),
    ]
    assert [r.data for r in table.records] == [
        {"algorithm": "dpo", "gold": 0.7123, "n": 40, "empty": True},
        {"algorithm": "sft", "gold": None, "n": 40, "empty": False},
    ]
    assert [r.data for r in meta["legend"].records] == [
        {"column": "gold", "meaning": "the judge"},
        {"column": "n", "meaning": "samples"},
    ]
