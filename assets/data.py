"""Raw sources and the tables derived from them (cleaning, RM training files)."""

import dagster as dg

from assets import checks
from assets.common import asset_in, data_key, declared, key
from resources.artifacts import ArtifactStoreResource
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.stages import data as stages


def build(task: TaskConfig) -> list[dg.AssetsDefinition]:
    assets = [_source_asset(task, name) for name in task.sources]
    assets += [_dataset_asset(task, name) for name in task.datasets]
    return assets


def _source_asset(task: TaskConfig, name: str) -> dg.AssetsDefinition:
    src = task.sources[name]

    @dg.asset(
        key=key(task, f"raw_{name}"),
        group_name=f"{task.task}_data",
        kinds={"parquet"},
        **declared(task, stages.load_source, name),
        description=f"Raw source '{name}' ({src.hub_id or src.path or src.loader}), parsed; bad rows quarantined.",
    )
    def _asset(artifacts: ArtifactStoreResource):
        return output(*stages.load_source(task, artifacts.store(), name))

    return _asset


def _dataset_asset(task: TaskConfig, name: str) -> dg.AssetsDefinition:
    spec = task.datasets[name]
    parents = {i: data_key(task, i) for i in spec.inputs}

    @dg.asset(
        key=key(task, name),
        group_name=f"{task.task}_data",
        kinds={"parquet"},
        ins={i: asset_in(task, asset) for i, asset in parents.items()},
        **declared(task, stages.build_dataset, name),
        check_specs=checks.specs(task, name),
        description=f"Built by '{spec.builder}' from {spec.inputs}.",
    )
    def _asset(artifacts: ArtifactStoreResource, **inputs):
        yield from checks.checked_output(task, name, stages.build_dataset(task, artifacts.store(), name, inputs))

    return _asset
