"""Data stages: a raw source parsed by its loader, a dataset derived by its builder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf_core.stages.base import Context, Result, stage, table, write_clean
from rlhf_core.store import ArtifactRef


@stage(lambda task, name: [f"sources.{name}", "seed", "world", "gold"])
def load_source(ctx: Context, name: str) -> Result:
    """Parse one raw source; bad rows are quarantined and counted (the demo's world generator
    reads ``world`` and ``gold``)."""
    from rlhf_core.data.registry import get_loader

    src = ctx.cfg.sources[name]
    return ctx.build(f"raw_{name}", None, {}, lambda out, _: write_clean(get_loader(src.loader)(src, ctx.cfg), out))


@stage(lambda task, name: [f"datasets.{name}", "seed"])
def build_dataset(ctx: Context, name: str, inputs: dict[str, ArtifactRef]) -> Result:
    from rlhf_core.data.registry import get_builder

    spec = ctx.cfg.datasets[name]

    def build(out: Path, _: Path) -> dict[str, Any]:
        return write_clean(get_builder(spec.builder)({k: table(v) for k, v in inputs.items()}, spec, ctx.cfg), out)

    return ctx.build(name, None, inputs, build)
