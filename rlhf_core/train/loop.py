"""One resumable optimisation loop that every trainer shares.

The trainer supplies ``step_fn(indices) -> (loss, stats)``; the loop owns the optimiser, the
linear warmup/decay schedule, gradient clipping, the deterministic batch order, progress, and
checkpoints. A checkpoint (model weights as safetensors, optimiser and scheduler state loaded
back with ``weights_only=True``) is written every ``checkpoint_every`` steps into ``work_dir``;
a restarted run continues from it and reproduces the same batches.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_model, save_model
from tqdm.auto import tqdm

from rlhf_core.config import TrainConfig

StepFn = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class LoopResult:
    history: list[dict[str, float]]
    steps: int
    resumed_from: int


class BatchOrder:
    """Deterministic batches: shuffled epochs, or priority sampling with replacement."""

    def __init__(self, n_rows: int, batch_size: int, seed: int, weights: torch.Tensor | None = None):
        self.n, self.bs, self.seed = n_rows, batch_size, seed
        self.steps_per_epoch = max(1, math.ceil(n_rows / batch_size))
        self.weights = None
        if weights is not None:
            if not bool((weights > 0).any()):
                raise ValueError("priority sampling needs at least one row with positive weight")
            self.weights = weights.clamp(min=0).double()

    def __call__(self, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + step // self.steps_per_epoch)
        if self.weights is not None:
            gen.manual_seed(self.seed * 100_003 + step)
            return torch.multinomial(self.weights, self.bs, replacement=True, generator=gen)
        perm = torch.randperm(self.n, generator=gen)
        pos = step % self.steps_per_epoch
        return perm[pos * self.bs : (pos + 1) * self.bs]


def total_steps(cfg: TrainConfig, n_rows: int, scale: float = 1.0) -> int:
    return max(1, math.ceil(cfg.epochs * math.ceil(n_rows / cfg.batch_size) * scale))


def run_loop(model: torch.nn.Module, cfg: TrainConfig, order: BatchOrder, steps: int, step_fn: StepFn,
             work_dir: Path, desc: str) -> LoopResult:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    ckpt = Path(work_dir) / "checkpoint"
    history: list[dict[str, float]] = []
    start = 0
    if (ckpt / "state.json").exists():
        load_model(model, str(ckpt / "model.safetensors"))
        states = torch.load(ckpt / "optim.pt", weights_only=True)
        optimizer.load_state_dict(states["optimizer"])
        scheduler.load_state_dict(states["scheduler"])
        state = json.loads((ckpt / "state.json").read_text())
        start, history = state["step"], state["history"]
    bar = tqdm(range(start, steps), desc=desc, initial=start, total=steps, mininterval=5, disable=False)
    for step in bar:
        model.train()
        loss, stats = step_fn(order(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{desc}: loss is {loss.item()} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        history.append({"step": step + 1, "loss": loss.item(), "grad_norm": float(grad_norm),
                        "lr": scheduler.get_last_lr()[0], **stats})
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < steps:
            _save_checkpoint(ckpt, model, optimizer, scheduler, step + 1, history)
    model.eval()
    return LoopResult(history, steps, start)


def _save_checkpoint(ckpt: Path, model, optimizer, scheduler, step: int, history: list) -> None:
    tmp = ckpt.with_name("checkpoint.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optim.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "history": history}))
    shutil.rmtree(ckpt, ignore_errors=True)
    os.rename(tmp, ckpt)
