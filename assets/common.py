"""Helpers shared by the asset factories: keys, what an asset takes from its stage's declaration,
partition-correct outputs."""

from collections.abc import Callable
from typing import Any

import dagster as dg

from resources.metadata import output, to_dagster
from rlhf_core.config import TaskConfig
from rlhf_core.stages.base import Stage
from rlhf_core.store import ArtifactRef, hash_key

# Assets that train or run models: a run holding one waits for a free slot of this pool
# (configs/deploy/dagster.yaml; one slot per GPU), and their stage runs through the launcher resource.
GPU_POOL = "gpu"


def gpu_pool(task: TaskConfig) -> str:
    """The pool of a task's model assets: one per GPU class (``launcher.gpu_class``), so that each class's
    limit is its own GPUs."""
    return f"{GPU_POOL}-{task.launcher.gpu_class}" if task.launcher.gpu_class else GPU_POOL


def key(task: TaskConfig, name: str) -> dg.AssetKey:
    return dg.AssetKey([task.task, name])


def asset_in(task: TaskConfig, name: str, **kwargs: Any) -> dg.AssetIn:
    return dg.AssetIn(key=key(task, name), **kwargs)


def declared(task: TaskConfig, stage: Stage, *ident: Any) -> dict[str, Any]:
    """An asset's code version and the config it reads, from the stage it runs (``ident``: the
    source or dataset an unpartitioned asset per name stands for; a partitioned asset gets one
    version over its partitions, while the store keys each partition apart)."""
    return {
        "code_version": stage.version(task, *ident),
        "metadata": {"stage": stage.name, "config_reads": stage.reads(task, *ident)},
    }


def stage_ins(task: TaskConfig, stage: Stage, **sources: str | dg.AssetIn) -> dict[str, dg.AssetIn]:
    """An asset's inputs under the names of its stage's inputs: an asset name, or an ``AssetIn`` where
    a partition mapping is needed. A name the stage does not take is an error here, at load time."""
    unknown = set(sources) - {i.name for i in stage.inputs}
    if unknown:
        raise TypeError(f"stage {stage.name!r} takes no input(s) {sorted(unknown)}: {[i.name for i in stage.inputs]}")
    return {name: s if isinstance(s, dg.AssetIn) else asset_in(task, s) for name, s in sources.items()}


def stage_asset(
    task: TaskConfig, stage: Stage, ins: dict[str, str | dg.AssetIn], launched: bool = False, **asset_kwargs: Any
) -> dg.AssetsDefinition:
    """The asset ``<task>/<stage name>`` of an unpartitioned stage whose inputs are artifacts: it
    calls the stage (through the launcher when ``launched``: a heavy stage, in the GPU pool)."""
    resource = "launcher" if launched else "artifacts"

    @dg.asset(
        key=key(task, stage.name),
        ins=stage_ins(task, stage, **ins),
        required_resource_keys={resource},
        **declared(task, stage),
        **({"pool": gpu_pool(task)} if launched else {}),
        **asset_kwargs,
    )
    def _asset(context: dg.AssetExecutionContext, **inputs: Any):
        args = stage.arguments(**inputs)
        if launched:
            return output(*context.resources.launcher.run(context, task, stage, *args))
        return output(*stage(task, context.resources.artifacts.store(), *args))

    return _asset


def data_key(task: TaskConfig, name: str) -> str:
    """The asset of a table named in the config: a raw source or a derived dataset."""
    return f"raw_{name}" if name in task.sources else name


def per_partition(
    context: dg.AssetExecutionContext, build: Callable[[str], tuple[ArtifactRef, dict[str, Any]]]
) -> dg.Output:
    """Build every partition the run targets and return ``{partition_key: ref}``.

    A run targets one key (``materialize(partition_key=...)``, a job run) or a range (a backfill
    run carries range tags instead of a partition key), so a partitioned asset never assumes one.
    Each partition gets its own metadata; the data version is the content hash of a single
    partition, or a hash over the range's content hashes.
    """
    refs: dict[str, ArtifactRef] = {}
    for partition in context.partition_keys:
        ref, meta = build(partition)
        context.add_asset_metadata(to_dagster(meta), partition_key=partition)
        refs[str(partition)] = ref
    hashes = [refs[p].content_hash for p in sorted(refs)]
    return dg.Output(refs, data_version=dg.DataVersion(hashes[0] if len(hashes) == 1 else hash_key(hashes)))


def dimension(partitions: dg.PartitionsDefinition, partition: str, name: str) -> str:
    """One dimension of a multi-partition key given as a string (``"rm|0"`` -> scorer ``"rm"``)."""
    return partitions.get_partition_key_from_str(str(partition)).keys_by_dimension[name]
