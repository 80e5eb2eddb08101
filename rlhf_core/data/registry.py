"""Loaders and builders by name, so task YAMLs declare data rules instead of scripts.

- A **loader** turns one raw source into a table: ``fn(source: SourceConfig, task: TaskConfig) -> CleanResult``.
- A **builder** derives a table from named input tables:
  ``fn(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult``.

Both account for every row (kept, dropped by a named rule, or quarantined with a reason).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rlhf_core.config import SourceConfig, project_root, warn_if_unpinned
from rlhf_core.errors import MissingInputError, OfflineHubError
from rlhf_core.registry import Registry

LOADERS: Registry[Callable] = Registry("loader", "rlhf_core.data.loaders")
BUILDERS: Registry[Callable] = Registry("builder", "rlhf_core.data.loaders")
loader, builder = LOADERS.register, BUILDERS.register  # ``@loader("name")`` on a loader's definition
get_loader, get_builder = LOADERS.get, BUILDERS.get


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
        raise OfflineHubError(
            f"dataset {source.hub_id}@{source.revision}: HF_HUB_OFFLINE=1; set the source's path to a local copy"
        )
    warn_if_unpinned(source.hub_id, source.revision)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(snapshot_download(repo_id=source.hub_id, revision=source.revision, repo_type="dataset"))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):  # no connection, and no copy in the hub cache
        raise OfflineHubError(
            f"dataset {source.hub_id}@{source.revision} needs a download and the hub cannot be reached"
        ) from None
