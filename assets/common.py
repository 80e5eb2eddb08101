"""Helpers shared by the asset factories: keys, code versions, the ref output."""

from typing import Any

import dagster as dg

from rlhf_core.config import TaskConfig, config_hash


def key(task: TaskConfig, name: str) -> dg.AssetKey:
    return dg.AssetKey([task.task, name])


def asset_in(task: TaskConfig, name: str, **kwargs: Any) -> dg.AssetIn:
    return dg.AssetIn(key=key(task, name), **kwargs)


def code_version(task: TaskConfig, *sections: Any) -> str:
    """Hash of the config that shapes an asset: change it and Dagster marks the asset stale."""
    return config_hash(task.task, task.seed, *sections)
