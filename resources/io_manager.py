"""IO manager for ``ArtifactRef``s: small JSON files, never pickles, never weights.

Assets return refs to content-addressed artifacts. A ref is filed under the asset's
**configuration key** (``with_config_keys``): a hash of the asset's code version (its declared
config and its code) and of its parents' configuration keys, so it names one configuration of
everything upstream. A run reads each parent's ref under the key its own resolved config gives,
never "the latest": a run with other ``--set`` values, before or at the same time, files its refs
under other keys. Two runs that share a key share the config and code of the whole upstream graph,
so they build the same artifacts (the store finds the second's).

    <store>/_refs/<task>/<asset>/<config key>/<partition or __all__>.json

A partitioned asset returns one ref per partition key its run targets, as ``{partition_key: ref}``:
one key for a single-partition run, every key of the range for a backfill run (which carries range
tags, not a partition key). Each ref is written to its own file, so a run can never write or read a
ref for the wrong partition. A downstream asset receives the ref of an unpartitioned parent, and
``{partition_key: ref}`` for a partitioned parent, holding exactly the parent partitions its own
partitions map to. A ref that is already on disk with the same content is not written again (a
run that finds everything in the store writes nothing to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from rlhf_core.errors import MissingInputError
from rlhf_core.store import ArtifactRef, ArtifactStore, hash_key

UNPARTITIONED = "__all__"
CONFIG_KEY = "config_key"  # the definition metadata entry that holds an asset's configuration key


def with_config_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """The assets with their configuration keys in their definition metadata (shown in the UI too).

    Every parent of an asset must be among ``assets`` and every asset must have a code version: a
    key that missed either could name two configurations.
    """
    by_key = {k: a for a in assets for k in a.keys}
    keys: dict[dg.AssetKey, str] = {}

    def key_of(asset: dg.AssetKey) -> str:
        if asset not in keys:
            definition = by_key.get(asset)
            if definition is None:
                raise ValueError(
                    f"{asset.to_user_string()} is a parent outside the graph: its configuration key is unknown"
                )
            version = definition.code_versions_by_key.get(asset)
            if version is None:
                raise ValueError(
                    f"{asset.to_user_string()} has no code version: its configuration key would miss its config"
                )
            parents = {p.to_user_string(): key_of(p) for p in definition.asset_deps[asset]}
            keys[asset] = hash_key(asset.to_user_string(), version, parents)
        return keys[asset]

    return [
        a.map_asset_specs(lambda spec: spec.merge_attributes(metadata={CONFIG_KEY: key_of(spec.key)})) for a in assets
    ]


def config_key(definition: dg.AssetsDefinition, asset: dg.AssetKey) -> str:
    """The configuration key ``with_config_keys`` gave an asset."""
    return _config_key(asset, definition.specs_by_key[asset].metadata)


def _config_key(asset: dg.AssetKey, metadata) -> str:
    value = (metadata or {}).get(CONFIG_KEY)
    if value is None:
        raise ValueError(
            f"{asset.to_user_string()} has no {CONFIG_KEY} in its definition metadata: build the "
            "task's assets through resources.io_manager.with_config_keys"
        )
    return value.value if isinstance(value, dg.MetadataValue) else str(value)


class RefIOManager(dg.ConfigurableIOManager):
    root: str

    def rel(self, asset: dg.AssetKey, key: str, partition: str | None) -> str:
        """A ref's place under the store (``ArtifactStore.write_record``: on the object store too, if any)."""
        return "/".join(["_refs", *asset.path, key, f"{UNPARTITIONED if partition is None else partition}.json"])

    def folder(self, asset: dg.AssetKey, key: str) -> Path:
        """Where the refs of one asset under one configuration key are on this machine."""
        return ArtifactStore(self.root).root.joinpath("_refs", *asset.path, key)

    def has_ref(self, definition: dg.AssetsDefinition, asset: dg.AssetKey, partition: str | None) -> bool:
        """Whether one partition of the asset (None: the unpartitioned asset) has a ref under its configuration key."""
        return (
            ArtifactStore(self.root).read_record(self.rel(asset, config_key(definition, asset), partition)) is not None
        )

    def _write(self, asset: dg.AssetKey, key: str, partition: str | None, ref: ArtifactRef) -> None:
        store, rel = ArtifactStore(self.root), self.rel(asset, key, partition)
        data = {**ref.__dict__, "cached": False}
        if store.read_record(rel) == data:
            return  # already there: a run that found everything in the store writes nothing
        store.write_record(rel, data)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        name = context.asset_key.to_user_string()
        key = _config_key(context.asset_key, context.definition_metadata)
        if not context.has_asset_partitions:
            if not isinstance(obj, ArtifactRef):
                raise TypeError(f"{name}: an unpartitioned asset must return an ArtifactRef, got {type(obj).__name__}")
            self._write(context.asset_key, key, None, obj)
            return
        targeted = sorted(str(p) for p in context.asset_partition_keys)
        if not isinstance(obj, dict) or sorted(map(str, obj)) != targeted:
            got = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(
                f"{name}: the run targets partitions {targeted}; the asset must return a "
                f"{{partition: ArtifactRef}} dict with exactly those keys, got {got}"
            )
        for partition, ref in obj.items():
            if not isinstance(ref, ArtifactRef):
                raise TypeError(f"{name} [{partition}]: expected an ArtifactRef, got {type(ref).__name__}")
        for partition, ref in obj.items():
            self._write(context.asset_key, key, str(partition), ref)

    def _load(self, asset: dg.AssetKey, key: str, partition: str | None) -> ArtifactRef:
        store, rel = ArtifactStore(self.root), self.rel(asset, key, partition)
        data = store.read_record(rel)
        if data is None:
            where = asset.to_user_string() + ("" if partition is None else f" [{partition}]")
            raise MissingInputError(
                f"{where} has not been materialized for this configuration (no {store.url}/{rel}); "
                f"materialize it first (`rlhf run {asset.path[0]}` with the same settings "
                "builds what a selection lacks)"
            )
        ref = ArtifactRef(**data)
        store.localize(ref.path)  # a run on another machine fetches the artifact from the object store
        return ref

    def load_input(self, context: dg.InputContext):
        key = _config_key(context.asset_key, context.upstream_output.definition_metadata)
        if context.has_asset_partitions:
            return {str(p): self._load(context.asset_key, key, str(p)) for p in context.asset_partition_keys}
        return self._load(context.asset_key, key, None)
