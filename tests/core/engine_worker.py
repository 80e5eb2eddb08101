"""A training process for the engine tests: A-LoL on a tiny GPT-2, run by plain python or torchrun.

    python tests/core/engine_worker.py OUT WORK                      # one process
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 tests/core/engine_worker.py OUT WORK
    python tests/core/engine_worker.py OUT WORK --kill step:4        # SIGKILL itself inside step 4
    python tests/core/engine_worker.py OUT WORK --kill save:4        # SIGKILL itself inside the step-4 save
    python tests/core/engine_worker.py OUT WORK --dropout 0.1        # dropout: RNG state matters on resume
    python tests/core/engine_worker.py OUT WORK --algorithm nll      # SFT's loss instead of A-LoL's

Rank 0 writes ``OUT/weights.safetensors`` and ``OUT/run.json``. A kill is a real
SIGKILL of this process at a chosen point, so nothing after it (no cleanup, no marker) runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
from pathlib import Path

import pandas as pd
import torch
from transformers import GPT2LMHeadModel

from rlhf_core.config import PolicyConfig, TrainConfig
from rlhf_core.train import offline
from rlhf_core.train.loop import NotMainProcess


def _tests_conftest():
    """tests/conftest.py (its tiny GPT-2 and tokenizer), loaded by path: other folders have a conftest too."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("rlhf_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _tests_conftest()

TRAIN = TrainConfig(epochs=2, batch_size=4, lr=3e-3, warmup_ratio=0.2, max_length=48, checkpoint_every=2, seed=3)
POLICY = PolicyConfig(algorithms=["a_lol"], data="rows", pairs="pairs", train=TRAIN, ppo_clip=0.9)
ROWS = pd.DataFrame(
    {
        "prompt": [f"Question {i}: what is the {w}?" for i, w in enumerate("abcdefghijkl")],
        "completion": [f" the {w} is {i % 3} and then {w * (i % 4 + 1)}" for i, w in enumerate("abcdefghijkl")],
        "advantage": [0.9, -0.2, 0.5, 0.1, 0.7, 0.3, -0.5, 0.8, 0.2, 0.6, 0.4, 1.0],
    }
)


def tiny_lm(dropout: float = 0.0):
    """A 2-layer, 32-wide GPT-2 and its byte-level tokenizer (pad = EOS), the same on every call."""
    tok = fixtures.gpt2_tokenizer()
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    return GPT2LMHeadModel(fixtures._gpt2_config(tok, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)), tok


def assert_same_weights(expected: dict, got: dict, atol: float) -> None:
    """Equal state dicts, except the attention key bias of GPT-2.

    The key bias cannot change attention (softmax is shift-invariant), so its true gradient is 0 and
    Adam turns the float noise of a different summation order into lr-sized steps.
    """
    assert expected.keys() == got.keys()
    for name, a in expected.items():
        b = got[name]
        if name.endswith("attn.c_attn.bias"):
            n = a.numel() // 3
            a, b = torch.cat([a[:n], a[2 * n :]]), torch.cat([b[:n], b[2 * n :]])
        torch.testing.assert_close(b, a, rtol=0, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


def kill_at(point: str) -> None:
    """Arrange a SIGKILL of this process inside step N (``step:N``) or inside the save at step N (``save:N``)."""
    kind, n = point.split(":")
    n = int(n)
    if kind == "step":
        forward, calls = offline.token_logprobs, {"n": 0}

        def dying_forward(model, batch):
            calls["n"] += 1
            if calls["n"] == 2 * (n - 1) + 1:  # two forwards (policy, reference) per earlier step
                os.kill(os.getpid(), signal.SIGKILL)
            return forward(model, batch)

        offline.token_logprobs = dying_forward
    else:
        from accelerate import Accelerator

        save = Accelerator.save_state

        def dying_save(self, output_dir=None, **kw):
            out = save(self, output_dir, **kw)  # model, optimiser and RNG are on disk, the marker is not
            if Path(output_dir).name.startswith(f"step-{n:08d}"):
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        Accelerator.save_state = dying_save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("work")
    parser.add_argument("--kill")
    parser.add_argument("--dropout", type=float, default=0.0)  # > 0 makes the RNG state part of what resumes
    parser.add_argument("--algorithm", default="a_lol")
    args = parser.parse_args()
    if args.kill:
        kill_at(args.kill)
    model, tok = tiny_lm(args.dropout)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        result = offline.train_offline(model, tok, ROWS, args.algorithm, TRAIN, Path(args.work), POLICY)
    except NotMainProcess:
        return  # rank 0 writes the weights
    from accelerate import PartialState
    from safetensors.torch import save_file

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.clone() for k, v in result.model.state_dict().items()}, out / "weights.safetensors")
    (out / "run.json").write_text(
        json.dumps(
            {
                "processes": PartialState().num_processes,
                "resumed_from": result.resumed_from,
                "losses": [h["loss"] for h in result.history],
                "moved": max(float((v - initial[k]).abs().max()) for k, v in result.model.state_dict().items()),
            }
        )
    )


if __name__ == "__main__":
    main()
