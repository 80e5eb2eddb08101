"""FSDP2 shards gathered into a whole model, as ``Engine.finish`` does: run by torchrun on 2 CPU processes.

    torchrun --nproc_per_node 2 tests/core/gather_worker.py OUT

accelerate runs FSDP on GPUs only, so this shards the tiny GPT-2 with torch's ``fully_shard`` over
gloo (every block, then the root, as configs/accelerate/fsdp.yaml), gathers with the call
``Accelerator.get_state_dict`` makes for FSDP2, and rank 0 writes ``OUT/weights.safetensors`` of
``plain_copy`` and ``OUT/run.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from engine_worker import tiny_lm
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from rlhf_core.train.loop import plain_copy


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model, _ = tiny_lm()
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    sharded = type(next(model.parameters())).__name__
    full = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, cpu_offload=True)
    )
    if dist.get_rank() == 0:
        from safetensors.torch import save_file

        whole = plain_copy(model, full).eval()
        with torch.no_grad():  # rank 0 alone: a forward pass that needed the other shards would hang
            logits = whole(torch.tensor([[1, 2, 3]])).logits
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.clone().contiguous() for k, v in whole.state_dict().items()}, out / "weights.safetensors")
        (out / "run.json").write_text(
            json.dumps(
                {
                    "sharded_param": sharded,
                    "model_class": type(whole).__name__,
                    "logits_finite": bool(torch.isfinite(logits).all()),
                }
            )
        )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
