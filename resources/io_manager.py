"""IO manager for ``ArtifactRef``s: small JSON files, never pickles, never weights.

Assets return refs to content-addressed artifacts. A partitioned asset returns one ref per
partition key its run targets, as ``{partition_key: ref}``: one key for a single-partition run,
every key of the range for a backfill run (which carries range tags, not a partition key). Each
ref is written to its own file, so a run can never write or read a ref for the wrong partition.
A downstream asset receives the ref of an unpartitioned parent, and ``{partition_key: ref}`` for
a partitioned parent, holding exactly the parent partitions its own partitions map to.
"""
from __future__ import annotations

import dagster as dg

from rlhf_core.errors import MissingInputError
from rlhf_core.store import ArtifactRef, ArtifactStore

UNPARTITIONED = "__all__"


class RefIOManager(dg.ConfigurableIOManager):
    root: str

    def _path(self, key: dg.AssetKey, partition: str | None) -> str:
        """A ref's place under the store (``ArtifactStore.write_record``: on the object store too, if any)."""
        return "/".join(["_refs", *key.path, f"{UNPARTITIONED if partition is None else partition}.json"])

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        name = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            if not isinstance(obj, ArtifactRef):
                raise TypeError(f"{name}: an unpartitioned asset must return an ArtifactRef, got {type(obj).__name__}")
            ArtifactStore(self.root).write_record(self._path(context.asset_key, None), {**obj.__dict__, "cached": False})
            return
        targeted = sorted(str(p) for p in context.asset_partition_keys)
        if not isinstance(obj, dict) or sorted(map(str, obj)) != targeted:
            got = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"{name}: the run targets partitions {targeted}; the asset must return a "
                             f"{{partition: ArtifactRef}} dict with exactly those keys, got {got}")
        for partition, ref in obj.items():
            if not isinstance(ref, ArtifactRef):
                raise TypeError(f"{name} [{partition}]: expected an ArtifactRef, got {type(ref).__name__}")
            ArtifactStore(self.root).write_record(self._path(context.asset_key, str(partition)),
                                                  {**ref.__dict__, "cached": False})

    def _load(self, key: dg.AssetKey, partition: str | None) -> ArtifactRef:
        store, path = ArtifactStore(self.root), self._path(key, partition)
        data = store.read_record(path)
        if data is None:
            where = key.to_user_string() + ("" if partition is None else f" [{partition}]")
            raise MissingInputError(f"{where} has not been materialized (no {store.url}/{path}); run it first, "
                                    "or leave out --select")
        ref = ArtifactRef(**data)
        store.localize(ref.path)  # a run on another machine fetches the artifact from the object store
        return ref

    def load_input(self, context: dg.InputContext):
        if context.has_asset_partitions:
            return {str(p): self._load(context.asset_key, str(p)) for p in context.asset_partition_keys}
        return self._load(context.asset_key, None)
