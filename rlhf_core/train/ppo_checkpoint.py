"""Atomic, resumable checkpoints of the online RL engine (``ppo.py``): weights, optimiser,
scheduler, KL controller, running moments, early-stop count, history, RNG and, between PPO epochs,
the rollout buffer, as checkpoint folders that are whole or not used (``checkpoint_dir``)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from rlhf_core.train.checkpoint_dir import complete_copy, publish, staging
from rlhf_core.train.ppo_models import BUFFER_KEYS


class CheckpointMixin:
    """Save and load the engine's whole state; the engine supplies the attributes named here."""

    def _modules(self) -> dict[str, nn.Module]:
        return {"policy": self.policy, **({"critic": self.critic} if self.critic is not None else {})}

    def save(self, name: str, step: int, current: dict | None) -> None:
        """Atomically write checkpoint ``name`` (rank 0: every process holds the same state)."""
        if not self.main:
            return
        final = self.work / name
        tmp = staging(final)
        for key, module in self._modules().items():
            save_model(module, str(tmp / f"{key}.safetensors"))
        state = {
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "kl_ctl": self.kl_ctl.state_dict(),
            "running": self.running.state_dict(),
            "early_count": self.early.count,
            "history": json.dumps(self.history),
            "timings": json.dumps(self.timings),
            "best": json.dumps(self.best),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "current": current,
        }
        torch.save(state, tmp / "state.pt")
        publish(tmp, final, step)

    def load(self, name: str = "checkpoint", weights_only: bool = False) -> dict | None:
        path = complete_copy(self.work / name)
        if path is None:
            return None
        for key, module in self._modules().items():
            load_model(module, str(path / f"{key}.safetensors"))
        if weights_only:
            return None
        state = torch.load(path / "state.pt", weights_only=True, map_location="cpu")  # RNG states stay on CPU
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.running.load_state_dict(state["running"])
        self.early.count = state["early_count"]
        self.history, self.timings = json.loads(state["history"]), json.loads(state["timings"])
        best = json.loads(state["best"])
        self.best = tuple(best) if best else None
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return state

    def _save_mid(self, step: int, buf, epochs_done: int, stats: dict[str, float]) -> None:
        current = {k: buf[k].cpu() for k in BUFFER_KEYS}
        current.update(epochs_done=epochs_done, stats=json.dumps(stats))
        self.save("checkpoint", step - 1, current)
