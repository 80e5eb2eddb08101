"""Materialize like a backfill run: partition-range tags, no partition key; find the refs it wrote."""

from pathlib import Path

import dagster as dg

from resources.io_manager import RefIOManager, config_key


def materialize_range(assets, key: dg.AssetKey, start: str, end: str, resources) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(
        list(assets), selection=[key], tags=tags, resources=resources, instance=dg.DagsterInstance.get()
    )


def ref_folder(root: Path, assets, name: str, task: str = "demo") -> Path:
    """The folder of an asset's refs under the configuration key its definition (among ``assets``) carries."""
    key = dg.AssetKey([task, name])
    definition = next(a for a in assets if key in a.keys)
    return RefIOManager(root=str(root / "artifacts")).folder(key, config_key(definition, key))


def refs(folder) -> dict[str, str]:
    """Every ref file under a ``_refs/<task>/<asset>/<config key>`` folder, by partition."""
    return {p.stem: p.read_text() for p in sorted(folder.glob("*.json"))}
