"""Loaders and builders by name, so task YAMLs declare data rules instead of scripts.

- A **loader** turns one raw source into a table: ``fn(source: SourceConfig, task: TaskConfig) -> CleanResult``.
- A **builder** derives a table from named input tables:
  ``fn(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult``.

Both account for every row (kept, dropped by a named rule, or quarantined with a reason).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from rlhf_core.config import SourceConfig, project_root, warn_if_unpinned
from rlhf_core.errors import MissingInputError, OfflineHubError
from rlhf_core.plugins import import_submodules

DISCOVERS = "rlhf_core.data.loaders"  # every module of the package registers its loaders on import
_LOADERS: dict[str, Callable] = {}
_BUILDERS: dict[str, Callable] = {}


def _register(table: dict[str, Callable], kind: str, name: str) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        if name in table:
            raise ValueError(f"{kind} {name!r} is registered twice")
        table[name] = fn
        return fn

    return deco


def loader(name: str) -> Callable[[Callable], Callable]:
    return _register(_LOADERS, "loader", name)


def builder(name: str) -> Callable[[Callable], Callable]:
    return _register(_BUILDERS, "builder", name)


def get_loader(name: str) -> Callable:
    _import_all()
    if name not in _LOADERS:
        raise KeyError(f"unknown loader {name!r}; known: {sorted(_LOADERS)}")
    return _LOADERS[name]


def get_builder(name: str) -> Callable:
    _import_all()
    if name not in _BUILDERS:
        raise KeyError(f"unknown builder {name!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[name]


def source_root(source: SourceConfig) -> Path:
    """The local directory or file of a source: ``path`` (relative to the project root), else a
    snapshot of the pinned hub dataset (this needs network access)."""
    if source.path is not None:
        path = Path(source.path)
        path = path if path.is_absolute() else project_root() / path
        if not path.exists():
            raise MissingInputError(f"source path {path} does not exist")
        return path
    if source.hub_id is None:
        raise ValueError(f"source for loader {source.loader!r} has neither a path nor a hub_id")
    if not source.revision:
        raise ValueError(f"hub source {source.hub_id!r} needs a pinned revision")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise OfflineHubError(f"dataset {source.hub_id}@{source.revision}: HF_HUB_OFFLINE=1; set the source's path "
                              "to a local copy")
    warn_if_unpinned(source.hub_id, source.revision)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(snapshot_download(repo_id=source.hub_id, revision=source.revision, repo_type="dataset"))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):  # no connection, and no copy in the hub cache
        raise OfflineHubError(f"dataset {source.hub_id}@{source.revision} needs a download and the hub cannot be "
                              "reached") from None


def _import_all() -> None:
    import_submodules(DISCOVERS)
