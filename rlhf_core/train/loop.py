"""One resumable training engine on ``accelerate`` that every trainer shares.

    engine = Engine(model, train_cfg, steps, compute_cfg)   # LoRA, device, precision, DDP/DeepSpeed/FSDP
    def step_fn(idx):                                        # rows of one micro-batch -> (mean loss, stats)
        return loss_of(engine.model, idx), {}
    result = engine.run(BatchOrder(n, train_cfg.batch_size, seed), step_fn, work_dir, "sft")

The trainer supplies ``step_fn`` and calls ``engine.model`` (the prepared module) in it; the
engine owns the optimiser, the linear warmup/decay schedule, clipping, mixed precision, the
deterministic batch order and checkpoints.

``train.batch_size`` is the global batch: the rows of one optimiser step, whatever the number of
processes. Each step's rows are split into ``processes x accumulation`` micro-batches
(``compute.micro_batch_size`` rows each); micro-batch losses are weighted by their share of the
step's rows, so the update equals the one of a single process on the whole batch.

A checkpoint ``checkpoints/step-N`` (``Engine.save_state``: model, optimiser, scheduler, grad
scaler and every process's RNG through ``Accelerator.save_state``, loaded back with
``weights_only=True``; the step and history in ``state.json``) is written and published the way
``checkpoint_dir`` says; older ones are removed only after that. A run restarts from the newest
complete checkpoint, so a kill in the middle of a save costs one interval. Online RL
(``ppo.py``) checkpoints through the same ``save_state``/``load_state``, with its own counters
and rollout buffer as the trainer's state.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlhf_core.config import ComputeConfig, TrainConfig
from rlhf_core.progress import progress_bar
from rlhf_core.seeding import seed_everything
from rlhf_core.train.checkpoint_dir import base_name, complete_copy, publish
from rlhf_core.train.validation import VALIDATION, Validation

StepFn = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
STATE, TENSORS = "state.json", "tensors.safetensors"  # a checkpoint's trainer state, beside accelerate's files


class NotMainProcess(Exception):
    """Raised by ``Engine.finish`` on every rank but 0 of a multi-process run: training is over and
    the weights are gathered; saving the artifact and its metrics is rank 0's alone."""


@dataclass
class LoopResult:
    history: list[dict[str, float]]
    steps: int
    resumed_from: int
    model: Any = field(default=None, repr=False)  # the trained module: a PeftModel when LoRA is kept unmerged


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


def make_accelerator(compute: ComputeConfig):
    """The process's Accelerator. Precision and compilation are process-wide state in accelerate,
    so a single process that trains with other settings than its previous run starts it afresh."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DataLoaderConfiguration

    compile_ = torch.cuda.is_available() if compute.compile is None else compute.compile
    backend = "INDUCTOR" if compile_ else "NO"
    state = AcceleratorState._shared_state
    dynamo = getattr(state.get("dynamo_plugin"), "backend", None)
    current = (state.get("_mixed_precision"), getattr(dynamo, "value", "NO"))
    if state and current != (compute.precision, backend) and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    # split_batches: the scheduler steps once per optimiser step, not once per process.
    return Accelerator(
        mixed_precision=compute.precision,
        dynamo_backend=backend,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )


def accumulation_steps(global_batch: int, micro_batch: int | None, processes: int) -> int:
    """Micro-batches per process and optimiser step, so that they add up to the global batch."""
    micro = micro_batch or math.ceil(global_batch / processes)
    if global_batch % (micro * processes):
        raise ValueError(
            f"train.batch_size {global_batch} is not a multiple of compute.micro_batch_size "
            f"{micro} x {processes} process(es)"
        )
    return global_batch // (micro * processes)


def lr_factor(step: int, steps: int, train: TrainConfig, warmup: int | None = None) -> float:
    """The learning-rate multiplier at optimiser step ``step``: linear warmup over ``warmup`` steps
    (default: ``warmup_ratio`` of the steps), then linear or cosine (half a period, as transformers'
    cosine schedule) to 0; ``constant`` (online RL's default) is 1 throughout."""
    if train.lr_schedule == "constant":
        return 1.0
    warmup = int(train.warmup_ratio * steps) if warmup is None else warmup
    if step < warmup:
        return (step + 1) / max(1, warmup)
    if train.lr_schedule == "linear":
        return max(0.0, (steps - step) / max(1, steps - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


class Engine:
    """A model prepared for training: LoRA adapters, device, precision, parallelism, optimiser."""

    def __init__(
        self,
        model: torch.nn.Module,
        train: TrainConfig,
        steps: int,
        compute: ComputeConfig | None = None,
        *,
        adam_eps: float = 1e-8,
        warmup_steps: int | None = None,
    ):
        from rlhf_core.train.lora import add_lora

        # As a transformers Trainer does: the adapters' initial weights, dropout and sampling follow train.seed.
        seed_everything(train.seed)
        self.train, self.steps, self.compute = train, steps, compute or ComputeConfig()
        self.warmup = warmup_steps
        acc = self.accelerator = make_accelerator(self.compute)
        acc.gradient_accumulation_steps = accumulation_steps(
            train.batch_size, self.compute.micro_batch_size, acc.num_processes
        )
        self.lora = self.compute.lora is not None
        if self.lora and self.sharded:
            raise ValueError(
                "LoRA trains under single_gpu, multi_gpu_ddp or deepspeed_zero2; ZeRO-3 and FSDP "
                "shard the weights for full fine-tuning (set compute.lora to null)"
            )
        if self.lora:
            model = add_lora(model, self.compute.lora)
        if self.compute.gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        self._configure_deepspeed()
        params = [p for p in model.parameters() if p.requires_grad]
        # Measured: the fused kernel on CUDA; on CPU the per-tensor loop beats the default multi-tensor one.
        kernel = {"fused": True} if acc.device.type == "cuda" else {"foreach": False}
        optimizer = torch.optim.AdamW(
            params, lr=train.lr, betas=(0.9, train.adam_beta2), weight_decay=train.weight_decay, eps=adam_eps, **kernel
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: self.lr_factor(s))
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, scheduler)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.device = acc.device

    def _configure_deepspeed(self) -> None:
        """DeepSpeed reads batch sizes and clipping from its own config; they come from ours."""
        plugin = self.accelerator.state.deepspeed_plugin
        if plugin is None:
            return
        acc = self.accelerator
        micro = self.train.batch_size // (acc.num_processes * acc.gradient_accumulation_steps)
        plugin.deepspeed_config.update(
            {
                "train_micro_batch_size_per_gpu": micro,
                "train_batch_size": self.train.batch_size,
                "gradient_accumulation_steps": acc.gradient_accumulation_steps,
                "gradient_clipping": self.train.max_grad_norm,
                # ZeRO-Offload refuses a client optimizer unless told otherwise; ours is torch's AdamW
                # (DeepSpeedCPUAdam would be faster but needs DeepSpeed's C++ op built on the host).
                "zero_force_ds_cpu_optimizer": False,
            }
        )

    def lr_factor(self, step: int) -> float:
        return lr_factor(step, self.steps, self.train, self.warmup)

    @property
    def sharded(self) -> bool:
        """Whether each process holds only a shard of the weights (DeepSpeed ZeRO-3, FSDP)."""
        from accelerate.utils import DistributedType

        kind = self.accelerator.distributed_type
        plugin = self.accelerator.state.deepspeed_plugin
        return kind == DistributedType.FSDP or (kind == DistributedType.DEEPSPEED and plugin.zero_stage == 3)

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @contextlib.contextmanager
    def reference(self):
        """Forward passes of the frozen reference: with LoRA it is the base with adapters off."""
        with torch.inference_mode(), self.accelerator.autocast():
            if not self.lora:
                yield
                return
            model = self.unwrapped
            model.eval()  # a reference has no dropout, as the frozen copy it replaces
            try:
                with model.disable_adapter():
                    yield
            finally:
                model.train()

    def run(
        self, order: BatchOrder, step_fn: StepFn, work_dir: Path, desc: str, validate: Validation | None = None
    ) -> LoopResult:
        """Train to ``self.steps``; with ``validate``, rank 0 validates the policy at its points and the record
        goes into that step's history (the other ranks wait for it)."""
        acc = self.accelerator
        if validate is not None and self.sharded:
            raise ValueError("validation while training samples on rank 0 alone: not under ZeRO-3 or FSDP")
        root = Path(work_dir) / "checkpoints"
        start, history = self._resume(root)
        world, rank = acc.num_processes, acc.process_index
        parts = world * acc.gradient_accumulation_steps
        bar = progress_bar(
            range(start, self.steps), desc=desc, initial=start, total=self.steps, disable=not acc.is_main_process
        )
        for step in bar:
            self.model.train()
            idx = order(step)
            chunks = torch.tensor_split(idx, parts)
            totals: dict[str, float] = {}
            grad_norm = torch.tensor(float("nan"))
            for chunk in chunks[rank::world]:
                with acc.accumulate(self.model):
                    share = len(chunk) / len(idx)
                    # An empty micro-batch (fewer rows than micro-batches) still runs one row at weight 0,
                    # so every process takes part in each gradient reduction.
                    loss, stats = step_fn(chunk if len(chunk) else idx[:1])
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"{desc}: loss is {loss.item()} at step {step + 1}")
                    acc.backward(loss * (share * parts))
                    for k, v in {"loss": loss.item(), **stats}.items():
                        totals[k] = totals.get(k, 0.0) + share * float(v)
                    if acc.sync_gradients:
                        grad_norm = acc.clip_grad_norm_(self.params, self.train.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
            keys = sorted(totals)
            summed = acc.reduce(
                torch.tensor([totals[k] for k in keys], dtype=torch.float64, device=self.device), "sum"
            ).tolist()
            record = dict(zip(keys, summed))
            history.append(
                {
                    "step": step + 1,
                    "loss": record.pop("loss"),
                    "grad_norm": float("nan") if grad_norm is None else float(grad_norm),
                    "lr": self.scheduler.get_last_lr()[0],
                    **record,
                }
            )
            if validate is not None and validate.due(step + 1):
                if acc.is_main_process:
                    with acc.autocast():
                        history[-1][VALIDATION] = validate(self.unwrapped, step + 1)
                acc.wait_for_everyone()
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", refresh=False)
            if (step + 1) % self.train.checkpoint_every == 0 and step + 1 < self.steps:
                self._save(root, step + 1, history)
        return LoopResult(history, self.steps, start, self.finish())

    def step(
        self, micro_batches: list, loss_fn: Callable[[Any], tuple[torch.Tensor, dict[str, float]]], weights: list[float]
    ) -> tuple[list[dict[str, float]], float]:
        """One optimiser step whose gradient is ``sum_i weights[i] * grad loss_fn(micro_batches[i])``,
        for trainers that pick their own micro-batches (online RL: several steps per rollout).

        Every process holds all ``micro_batches`` and runs ``micro_batches[rank::world]``; the
        gradients are summed over processes once, on each process's last backward, so the step is
        the one a single process takes over all of them. A process left without a micro-batch runs
        one at weight 0 to take part in that reduction. A non-finite loss anywhere raises
        ``FloatingPointError`` on every process before the weights change. Returns every
        micro-batch's ``{"loss", **stats}`` in the order given, and the gradient norm before clipping.
        """
        acc = self.accelerator
        world, rank = acc.num_processes, acc.process_index
        mine = list(range(rank, len(micro_batches), world)) or [None]
        local: list[tuple[int, dict[str, float]]] = []
        finite = True
        for j, i in enumerate(mine):
            sync = contextlib.nullcontext() if j == len(mine) - 1 else acc.no_sync(self.model)
            with sync:
                loss, stats = loss_fn(micro_batches[0 if i is None else i])
                weight = 0.0 if i is None else weights[i]
                finite = finite and bool(torch.isfinite(loss))
                # DDP averages the processes' gradients; the step sums them.
                acc.backward(loss * (weight * world))
            if i is not None:
                local.append((i, {"loss": float(loss.detach()), **stats}))
        if world > 1:
            from accelerate.utils import gather_object

            finite = bool(acc.reduce(torch.tensor([float(not finite)], device=self.device), "sum") == 0)
            local = gather_object(local)
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError("non-finite loss")
        grad_norm = acc.clip_grad_norm_(self.params, self.train.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return [stats for _, stats in sorted(local, key=lambda item: item[0])], float(grad_norm)

    def finish(self) -> torch.nn.Module:
        """The whole trained module without wrappers, on rank 0; LoRA is merged into the base when configured.

        Under ZeRO-3 or FSDP each process holds a shard: ``get_state_dict`` gathers them (every rank
        takes part) and rank 0 loads the full weights into a plain copy of the model, so what is
        saved is a full model. In a run of several processes the other ranks then raise ``NotMainProcess``.
        """
        acc = self.accelerator
        full = acc.get_state_dict(self.model) if self.sharded else None
        if acc.num_processes > 1:
            acc.wait_for_everyone()
            if not acc.is_main_process:
                raise NotMainProcess(f"rank {acc.process_index}: training is over; rank 0 saves the model")
        model = acc.unwrap_model(self.model, keep_fp32_wrapper=False)
        if full is not None:
            model = plain_copy(model, full)
        model.eval()
        if self.lora and self.compute.lora.merge:
            model = model.merge_and_unload()
        return model

    def save_state(self, final: Path, state: dict[str, Any], tensors: dict[str, torch.Tensor] | None = None) -> None:
        """Write checkpoint ``final``, whole or not at all (``checkpoint_dir``); every process calls it.

        It holds the model (every module the engine trains: a policy and its value head are one),
        the optimiser, the scheduler, the grad scaler and every process's RNG (``Accelerator.save_state``),
        the trainer's ``state`` (JSON: its step, history, counters) and its ``tensors`` (safetensors:
        online RL's rollout buffer between PPO epochs). Rank 0 writes what every process shares."""
        acc = self.accelerator
        tmp = final.with_name(final.name + ".tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        acc.wait_for_everyone()
        if acc.is_main_process:
            (tmp / STATE).write_text(json.dumps(state))
            if tensors:
                from safetensors.torch import save_file

                save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / TENSORS)
            publish(tmp, final, state["step"])
        acc.wait_for_everyone()

    def load_state(self, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Load a complete checkpoint written by ``save_state`` into the engine; the trainer's state and tensors."""
        from safetensors.torch import load_file

        self.accelerator.load_state(str(path))
        tensors = load_file(path / TENSORS) if (path / TENSORS).exists() else {}
        return json.loads((path / STATE).read_text()), tensors

    def _save(self, root: Path, step: int, history: list) -> None:
        final = root / f"step-{step:08d}"
        self.save_state(final, {"step": step, "history": history})
        if self.accelerator.is_main_process:
            for old in root.iterdir():
                if old != final:
                    shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()

    def _resume(self, root: Path) -> tuple[int, list]:
        latest = latest_checkpoint(root)
        if latest is None:
            return 0, []
        state, _ = self.load_state(latest)
        return state["step"], state["history"]


def plain_copy(sharded: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A new, unsharded instance of ``sharded``'s model class holding the gathered ``state``.

    FSDP2 swaps the module's class for a subclass of ``FSDPModule`` and the original class and
    DeepSpeed keeps hooks on the module that gather shards collectively, so neither object can run
    a forward pass on rank 0 alone: the copy has no hooks and plain tensors.
    """
    from torch.distributed.fsdp import FSDPModule

    cls = type(sharded)
    if isinstance(sharded, FSDPModule):
        cls = next(base for base in cls.__bases__ if base is not FSDPModule)
    model = cls(sharded.config)
    model.load_state_dict(state)
    return model


def latest_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint with a complete copy (half-written ones are skipped)."""
    names = {base_name(p) for p in Path(root).glob("step-*")}
    done = [copy for name in names if (copy := complete_copy(Path(root) / name)) is not None]
    return max(done, key=lambda p: int(base_name(p).split("-")[1]), default=None)
