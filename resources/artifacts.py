"""The artifact store as a Dagster resource (a thin handle on rlhf_core.store.ArtifactStore)."""

from __future__ import annotations

import dagster as dg

from rlhf_core.store import ArtifactStore


class ArtifactStoreResource(dg.ConfigurableResource):
    root: str
    rebuild: list[str] = []  # asset names built again even where the store has them (rlhf run --rebuild)

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root, rebuild=self.rebuild)
