"""Helpers for the data-loader tests: build a task's tables from the fixture files.

``build_task`` runs every source and dataset of a task config in dependency order, round-tripping
each kept table through Parquet (as the artifact store does), and checks row accounting.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from rlhf_core.config import TaskConfig, load_config, project_root
from rlhf_core.data.quarantine import CleanResult
from rlhf_core.data.registry import get_builder, get_loader

FIXTURES = project_root() / "data" / "fixtures"
EOS = "<|endoftext|>"


def load_task(task: str, overrides: list[str] = ()) -> TaskConfig:
    """A task config pointed at its fixtures through ``--set``-style overrides."""
    return load_config(project_root() / "configs" / "tasks" / f"{task}.yaml", list(overrides))


def roundtrip(df: pd.DataFrame) -> pd.DataFrame:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    buf.seek(0)
    return pd.read_parquet(buf)


def build_task(cfg: TaskConfig, only: set[str] | None = None) -> dict[str, CleanResult]:
    """Every source and dataset (or those in ``only`` and their upstreams), by name."""
    results: dict[str, CleanResult] = {}

    def run(name: str) -> CleanResult:
        if name not in results:
            if name in cfg.sources:
                src = cfg.sources[name]
                res = get_loader(src.loader)(src, cfg)
            else:
                spec = cfg.datasets[name]
                res = get_builder(spec.builder)({i: run(i).kept for i in spec.inputs}, spec, cfg)
            res.check_accounted()
            res.kept = roundtrip(res.kept)
            results[name] = res
        return results[name]

    for name in sorted(only) if only else [*cfg.sources, *cfg.datasets]:
        run(name)
    return results


def quarantine_reasons(res: CleanResult) -> list[tuple[str, int, str, str]]:
    """``(parent/file name, row, field, reason)`` of every quarantined row, in order."""
    return [
        ("/".join(Path(s).parts[-2:]), r, f, reason)
        for s, r, f, reason in res.quarantined[["source", "row", "field", "reason"]].values
    ]
