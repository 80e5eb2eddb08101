"""Asset checks guarding the hand-offs, run inside their asset's own step.

Each asset declares its checks as ``check_specs`` and yields their results right after its
output, so a check costs no step and no input load of its own, and a failed blocking check
fails the step before any downstream asset starts. Bodies call validators in
``rlhf_core.data.validate``, which are unit-tested without Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg

from assets.common import key
from resources.metadata import output
from rlhf_core.config import TaskConfig
from rlhf_core.data import validate
from rlhf_core.stages.base import table
from rlhf_core.store import ArtifactRef


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: Callable[[ArtifactRef], tuple[bool, dict]]
    blocking: bool = True  # an ERROR failure stops everything downstream

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN


def for_asset(task: TaskConfig, name: str) -> list[Check]:
    """The checks of one asset of ``task`` (by its name without the task prefix)."""
    checks = []
    if name in task.datasets:
        # A table built from people's labels is empty until someone labels: a warning, and its RM stops
        # on its own (the policies' run builds these tables too, the RMs' step reads every RM's data).
        awaiting = name in from_people(task)
        checks.append(
            Check(
                "non_empty",
                "The table has rows; every input row was kept, dropped by rule or quarantined."
                + (" Empty until people label (a warning)." if awaiting else ""),
                lambda ref: validate.non_empty_table(table(ref), ref.path),
                blocking=not awaiting,
            )
        )
        pair_data = {
            spec.data
            for spec in task.reward_models.values()
            if spec.kind in ("bradley_terry", "fg_sequence_preference")
        }  # pair-PM rows may be A/B answers
        if name in pair_data:
            checks.append(
                Check(
                    "pairs_valid",
                    "No empty responses; chosen differs from rejected.",
                    lambda ref: validate.preference_pairs_valid(table(ref), allow_empty=awaiting),
                )
            )
    return checks


def from_people(task: TaskConfig) -> set[str]:
    """The datasets built, through any number of datasets, from a feedback collection's table."""
    found = set(task.feedback.collections) if task.feedback else set()
    grew = True
    while grew:
        more = {n for n, spec in task.datasets.items() if found & set(spec.inputs)} - found
        found |= more
        grew = bool(more)
    return found - set(task.feedback.collections if task.feedback else ())


def specs(task: TaskConfig, name: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(c.name, asset=key(task, name), description=c.description, blocking=c.blocking)
        for c in for_asset(task, name)
    ]


def results(task: TaskConfig, name: str, ref: ArtifactRef) -> Iterator[dg.AssetCheckResult]:
    for check in for_asset(task, name):
        passed, meta = check.run(ref)
        yield dg.AssetCheckResult(
            asset_key=key(task, name), check_name=check.name, passed=passed, metadata=meta, severity=check.severity
        )


def checked_output(task: TaskConfig, name: str, built: tuple[ArtifactRef, dict]) -> Iterator:
    """What a checked asset yields: its output, then the results of its checks."""
    ref, meta = built
    yield output(ref, meta)
    yield from results(task, name, ref)
