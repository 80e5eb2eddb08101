"""Materialize like a backfill run: partition-range tags, no partition key."""
import dagster as dg


def materialize_range(assets, key: dg.AssetKey, start: str, end: str, resources) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(list(assets), selection=[key], tags=tags, resources=resources,
                          instance=dg.DagsterInstance.get())


def refs(folder) -> dict[str, str]:
    """Every ref file under a ``_refs/<task>/<asset>`` folder, by partition."""
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.json"))}
