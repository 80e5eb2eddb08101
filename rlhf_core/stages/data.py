"""Data stages: a raw source parsed by its loader, a dataset derived by its builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf_core.config import TaskConfig, header_command, task_config_path
from rlhf_core.data.registry import get_builder, get_loader
from rlhf_core.errors import OfflineHubError
from rlhf_core.stages.base import Context, Result, stage, table, write_clean
from rlhf_core.store import ArtifactRef


@stage(
    lambda task, name: [f"sources.{name}", "seed", "world", "gold"],
    each=lambda task: list(task.sources),
    uses=lambda task, name: [get_loader(task.sources[name].loader)],
)
def load_source(ctx: Context, name: str) -> Result:
    """Parse one raw source; bad rows are quarantined and counted (the demo's world generator
    reads ``world`` and ``gold``)."""
    src = ctx.cfg.sources[name]

    def build(out: Path, _: Path) -> dict[str, Any]:
        try:
            return write_clean(get_loader(src.loader)(src, ctx.cfg), out)
        except OfflineHubError as err:  # say which source, and how to run it from local files
            fixture = header_command(task_config_path(ctx.task))
            raise OfflineHubError(
                f"source {name}: {err}; give it a local copy with --set sources.{name}.path=DIR"
                + (
                    f", or run the fixture command from the header of configs/tasks/{ctx.task}.yaml: {fixture}"
                    if fixture
                    else ""
                )
            ) from None

    return ctx.build(f"raw_{name}", None, {}, build)


def _builder_code(task: TaskConfig, name: str) -> list:
    """The dataset's builder, and the scorer its ``scorer`` option names (it scores rows the data lacks)."""
    from rlhf_core.rewards.base import scorer_code

    spec = task.datasets[name]
    scorer = spec.options.get("scorer")
    return [get_builder(spec.builder), *(scorer_code(scorer, {}) if scorer else [])]


@stage(lambda task, name: [f"datasets.{name}", "seed"], each=lambda task: list(task.datasets), uses=_builder_code)
def build_dataset(ctx: Context, name: str, inputs: dict[str, ArtifactRef]) -> Result:
    spec = ctx.cfg.datasets[name]

    def build(out: Path, _: Path) -> dict[str, Any]:
        return write_clean(get_builder(spec.builder)({k: table(v) for k, v in inputs.items()}, spec, ctx.cfg), out)

    return ctx.build(name, None, inputs, build)
