"""IO manager for ``ArtifactRef``s: small JSON files, never pickles, never weights.

Assets return refs to content-addressed artifacts. A partitioned asset returns one ref per
partition key its run targets, as ``{partition_key: ref}``: one key for a single-partition run,
every key of the range for a backfill run (which carries range tags, not a partition key). Each
ref is written to its own file, so a run can never write or read a ref for the wrong partition.
A downstream asset receives the ref of an unpartitioned parent, and ``{partition_key: ref}`` for
a partitioned parent, holding exactly the parent partitions its own partitions map to.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg

from rlhf_core.errors import MissingInputError
from rlhf_core.store import ArtifactRef, ArtifactStore, write_json_atomic

UNPARTITIONED = "__all__"


class RefIOManager(dg.ConfigurableIOManager):
    root: str

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        # refs live beside the artifacts' local copies (an object store's cache), as paths on this machine
        return ArtifactStore(self.root).root.joinpath("_refs", *key.path, f"{UNPARTITIONED if partition is None else partition}.json")

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        name = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            if not isinstance(obj, ArtifactRef):
                raise TypeError(f"{name}: an unpartitioned asset must return an ArtifactRef, got {type(obj).__name__}")
            write_json_atomic(self._path(context.asset_key, None), {**obj.__dict__, "cached": False})
            return
        targeted = sorted(str(p) for p in context.asset_partition_keys)
        if not isinstance(obj, dict) or sorted(map(str, obj)) != targeted:
            got = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"{name}: the run targets partitions {targeted}; the asset must return a "
                             f"{{partition: ArtifactRef}} dict with exactly those keys, got {got}")
        for partition, ref in obj.items():
            if not isinstance(ref, ArtifactRef):
                raise TypeError(f"{name} [{partition}]: expected an ArtifactRef, got {type(ref).__name__}")
            write_json_atomic(self._path(context.asset_key, str(partition)), {**ref.__dict__, "cached": False})

    def _load(self, key: dg.AssetKey, partition: str | None) -> ArtifactRef:
        path = self._path(key, partition)
        if not path.exists():
            where = key.to_user_string() + ("" if partition is None else f" [{partition}]")
            raise MissingInputError(f"{where} has not been materialized (no {path}); run it first, "
                                    "or leave out --select")
        return ArtifactRef.from_json(path.read_text())

    def load_input(self, context: dg.InputContext):
        if context.has_asset_partitions:
            return {str(p): self._load(context.asset_key, str(p)) for p in context.asset_partition_keys}
        return self._load(context.asset_key, None)
