"""Where a model comes from (a pinned hub id, a local path, or a tiny network built from sizes)."""

from __future__ import annotations

from dataclasses import dataclass

from rlhf_core.config.parse import ConfigError


@dataclass(frozen=True)
class TinyGPTConfig:
    """Sizes of a GPT-2-style network built from scratch (the offline demo)."""

    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 256
    dropout: float = 0.0


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: exactly one of a pinned hub id, a local path, or tiny init."""

    hub_id: str | None = None
    revision: str | None = None
    path: str | None = None
    init: TinyGPTConfig | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        given = [k for k in ("hub_id", "path", "init") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(f"exactly one of hub_id, path, init must be set, got {given or 'none'}")
        if self.hub_id is not None and not self.revision:
            raise ConfigError(f"hub_id {self.hub_id!r} needs a pinned revision")
