"""IO manager for ``ArtifactRef``s: small JSON files, never pickles, never weights.

Assets return refs to content-addressed artifacts; downstream assets receive the ref (or a
``{partition: ref}`` dict when they read several partitions of a partitioned parent).
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from rlhf_core.store import ArtifactRef, write_json_atomic


class RefIOManager(dg.ConfigurableIOManager):
    root: str

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        return Path(self.root).joinpath("_refs", *key.path, f"{partition or '__all__'}.json")

    def handle_output(self, context: dg.OutputContext, obj: ArtifactRef) -> None:
        if not isinstance(obj, ArtifactRef):
            raise TypeError(f"{context.asset_key.to_user_string()}: assets must return an ArtifactRef, got {type(obj).__name__}")
        partition = context.partition_key if context.has_partition_key else None
        write_json_atomic(self._path(context.asset_key, partition), {**obj.__dict__, "cached": False})

    def _load(self, key: dg.AssetKey, partition: str | None) -> ArtifactRef:
        path = self._path(key, partition)
        if not path.exists():
            where = f"{key.to_user_string()}" + (f" [{partition}]" if partition else "")
            raise FileNotFoundError(f"{where} has not been materialized (no {path})")
        return ArtifactRef.from_json(path.read_text())

    def load_input(self, context: dg.InputContext):
        key = context.asset_key
        if context.has_asset_partitions and not context.has_partition_key:
            return {p: self._load(key, p) for p in context.asset_partition_keys}
        if context.has_asset_partitions:
            keys = context.asset_partition_keys
            # AssetIn(metadata={"as_dict": True}): a mapping that may yield one key still gives a dict.
            if len(keys) > 1 or (context.definition_metadata or {}).get("as_dict"):
                return {p: self._load(key, p) for p in keys}
            return self._load(key, keys[0])
        return self._load(key, None)
