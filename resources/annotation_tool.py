"""The annotation tool (Label Studio) as the shell sees it: where it is, its token, the pages of a collection.

The token is read from the environment variable the task names (``feedback.token_env``, by default
``LABEL_STUDIO_API_KEY``) at the moment of a call; it is never in a config, a log line or metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

from rlhf_core.config import TaskConfig
from rlhf_core.errors import UserError
from rlhf_core.feedback.batches import Submitted, write_batch
from rlhf_core.feedback.interfaces import PAGES
from rlhf_core.feedback.label_studio import LabelStudio
from rlhf_core.paths import project_root
from rlhf_core.stages.feedback import batch_folder


def connect(task: TaskConfig) -> LabelStudio:
    token = os.environ.get(task.feedback.token_env)
    if not token:
        raise UserError(
            f"feedback: set {task.feedback.token_env} to the annotation tool's API token "
            "(Label Studio: Account & Settings -> Legacy Token; `make annotate` sets one up)"
        )
    return LabelStudio(task.feedback.url, token)


def label_config(page: str) -> str:
    return (project_root() / "configs" / "annotation" / f"{page}.xml").read_text(encoding="utf-8")


def project_title(task: TaskConfig, collection: str, page: str) -> str:
    return f"{task.task}/{collection}/{page}"


def pages(task: TaskConfig, collection: str) -> list[str]:
    return list(PAGES[task.feedback.collections[collection].interface])


def project_ids(tool: LabelStudio, task: TaskConfig, collection: str) -> dict[str, int]:
    """Each page's project (created on first use) of a collection."""
    overlap = task.feedback.collections[collection].annotators_per_item
    return {
        page: tool.project(project_title(task, collection, page), label_config(page), overlap)
        for page in pages(task, collection)
    }


def submitted(tool: LabelStudio, task: TaskConfig, collection: str) -> list[Submitted]:
    """Every submitted annotation of a collection's pages."""
    users = tool.users()
    return [s for page, pid in project_ids(tool, task, collection).items() for s in tool.submitted(page, pid, users)]


def collect(task: TaskConfig, collection: str) -> tuple[Path | None, dict[str, int]]:
    """Write what is new in the tool as a dated batch of the collection (``None``: nothing new), and the
    counts: the sensor's poll and the webhook receiver's call are this one path."""
    spec = task.feedback.collections[collection]
    found = submitted(connect(task), task, collection)
    return write_batch(batch_folder(task, collection), spec.interface, spec.split, found)
