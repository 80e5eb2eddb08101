"""[LoL] validation while the offline family trains (docs/sources.md §6.2, §7.2): when it runs and what it records.

    v = Validation(per_epoch=2, epoch_steps=10, score=lambda model: {"reward": 0.3})
    v.due(5), v.due(6)   # True, False: the 5th optimiser step of each epoch and its 10th are the points
    v(model, 15)         # {"epoch": 2, "step": 5, "reward": 0.3}

The engine (``loop.Engine.run``) asks ``due`` after every optimiser step and stores what ``__call__`` returns
under the step's ``"validation"`` key of its history, so a resumed run keeps the points it had passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VALIDATION = "validation"  # the history key of a step's validation record
VALIDATION_FILE = "validation.csv"  # the history in a policy artifact (and beside its generations)


@dataclass(frozen=True)
class Validation:
    per_epoch: int  # the seed's -vf
    epoch_steps: int  # optimiser steps of one epoch
    score: Callable[[Any], dict[str, float]]  # the policy -> the mean of each reward column over the val prompts

    @property
    def every(self) -> int:
        """Steps between points within an epoch: the seed's ``int(n_steps / vf)``, at least 1 (the seed's
        modulo by 0 when an epoch has fewer steps than validations)."""
        return max(1, self.epoch_steps // self.per_epoch)

    def point(self, step: int) -> tuple[int, int]:
        """The (epoch, step within that epoch) of global optimiser step ``step``, all 1-based."""
        return (step - 1) // self.epoch_steps + 1, (step - 1) % self.epoch_steps + 1

    def due(self, step: int) -> bool:
        return self.point(step)[1] % self.every == 0

    def __call__(self, model: Any, step: int) -> dict[str, float]:
        import torch

        epoch, within = self.point(step)
        with torch.random.fork_rng():  # sampling seeds the generator; training's dropout draws stay as they were
            return {"epoch": epoch, "step": within, **self.score(model)}


def validation_history(history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The validation records of a training history, in step order."""
    return [h[VALIDATION] for h in history if VALIDATION in h]
