"""Helpers shared by the asset factories: keys and the ref output."""

from typing import Any

import dagster as dg

from rlhf_core.config import TaskConfig


def key(task: TaskConfig, name: str) -> dg.AssetKey:
    return dg.AssetKey([task.task, name])


def asset_in(task: TaskConfig, name: str, **kwargs: Any) -> dg.AssetIn:
    return dg.AssetIn(key=key(task, name), **kwargs)


def data_key(task: TaskConfig, name: str) -> str:
    """The asset of a table named in the config: a raw source or a derived dataset."""
    return f"raw_{name}" if name in task.sources else name
