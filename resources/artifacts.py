"""The artifact store as a Dagster resource (a thin handle on rlhf_core.store.ArtifactStore)."""
from __future__ import annotations

import dagster as dg

from rlhf_core.store import ArtifactStore


class ArtifactStoreResource(dg.ConfigurableResource):
    root: str

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root)
