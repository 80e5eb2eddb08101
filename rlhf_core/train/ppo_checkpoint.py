"""Resumable checkpoints of the online RL engine (``ppo.py``) in the training engine's one format
(``Engine.save_state``): the weights of the policy and its critic (one trained module), the
optimiser, the scheduler and every process's RNG, and as the trainer's state the KL controller,
the running score moments, the early-stop count, the history, the timings, the best eval and,
between PPO epochs, the rollout buffer. Checkpoints written before this format are not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlhf_core.train.checkpoint_dir import complete_copy
from rlhf_core.train.ppo_models import BUFFER_KEYS


class CheckpointMixin:
    """Save and load the online engine's whole state; the engine supplies the attributes named here."""

    def save(self, name: str, step: int, current: dict[str, Any] | None) -> None:
        """Write checkpoint ``name`` (every process calls it; rank 0 writes what they share).
        ``current``: the rollout buffer and the PPO epochs done of an unfinished step."""
        state = {
            "step": step,
            "kl_ctl": self.kl_ctl.state_dict(),
            "running": self.running.state_dict(),
            "early_count": self.early.count,
            "history": self.history,
            "timings": self.timings,
            "best": self.best,
            "current": None if current is None else {k: current[k] for k in ("epochs_done", "stats")},
        }
        buffer = None if current is None else {k: current[k] for k in BUFFER_KEYS}
        self.engine.save_state(self.work / name, state, buffer)

    def checkpoint(self, name: str = "checkpoint") -> Path | None:
        return complete_copy(self.work / name)

    def load(self, path: Path) -> dict[str, Any]:
        """Restore the engine and the trainer from checkpoint ``path``; its state, with the buffer in ``current``."""
        state, buffer = self.engine.load_state(path)
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.running.load_state_dict(state["running"])
        self.early.count = state["early_count"]
        self.history, self.timings = state["history"], state["timings"]
        self.best = tuple(state["best"]) if state["best"] else None
        if state["current"] is not None:
            state["current"].update(buffer)
        return state

    def _save_mid(self, step: int, buf, epochs_done: int, stats: dict[str, float]) -> None:
        self.save(
            "checkpoint", step - 1, {**{k: buf[k] for k in BUFFER_KEYS}, "epochs_done": epochs_done, "stats": stats}
        )
