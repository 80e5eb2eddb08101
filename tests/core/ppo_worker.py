"""An online-RL process for the data-parallel tests: a toy PPO or GRPO run on a tiny GPT-2, run by
plain python (one process) or torchrun (several, each rolling out its share of the prompts).

    python tests/core/ppo_worker.py OUT WORK SEMANTICS
    ACCELERATE_USE_CPU=true torchrun --nproc_per_node 2 tests/core/ppo_worker.py OUT WORK SEMANTICS

SEMANTICS is a key of ``SETTINGS``: the tests run legacy_step and grpo; fine_grained and rloo are
there for the same check by hand (make test has no time for every semantics).

Rank 0 writes ``OUT/run.json`` (every rollout's response tokens and the history) and
``OUT/weights.safetensors`` (the policy and its critic); the other ranks end with ``NotMainProcess``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from rlhf_core.train import ppo
from rlhf_core.train.loop import NotMainProcess
from tests.core.tiny_rl import (
    PROMPTS,
    letter_share,
    one_thread,
    tiny_policy,
    toy_ppo_config,
)

# Dropout off: processes draw different dropout masks than one process does (their minibatches differ).
SETTINGS = {
    # two minibatches per optimiser step (one per process), shaped and whitened scores, the adaptive KL
    "legacy_step": {
        "grad_accum": 2,
        "whiten_rewards": True,
        "use_score_scaling": True,
        "use_score_norm": True,
        "max_grad_norm": 1.0,
        "value_dropout": 0.0,
        "lr_schedule": "linear",
        "warmup_steps": 1,
    },
    # [FG]: whitened dense rewards, every minibatch (weighted by its share of length) in one step per epoch
    "fine_grained": {
        "semantics": "fine_grained",
        "whiten_rewards": True,
        "adaptive_kl": False,
        "vf_coef": 1.0,
        "value_dropout": 0.0,
        "lr": 3e-3,
    },
    # groups of 4 over two processes; 12 rows in minibatches of 4 give one process two of three minibatches
    "grpo": {
        "semantics": "grpo",
        "samples_per_prompt": 4,
        "prompts_per_rollout": 3,
        "grad_accum": 3,
    },
    # leave-one-out baselines over groups of 4 split between the processes
    "rloo": {
        "semantics": "rloo",
        "samples_per_prompt": 4,
        "prompts_per_rollout": 3,
        "grad_accum": 3,
    },
}


def main(out: Path, work: Path, semantics: str) -> None:
    policy, tok = tiny_policy(seed=0)
    rollouts = []
    rollout = ppo._Engine.rollout

    def recording(self, step):
        buf, stats = rollout(self, step)
        rollouts.append(buf["response_ids"].tolist())  # the whole rollout: every process holds it
        return buf, stats

    ppo._Engine.rollout = recording
    torch.manual_seed(7)  # every process samples from the same stream
    with one_thread():
        try:
            result = ppo.train_ppo(
                policy,
                tok,
                PROMPTS,
                letter_share,
                toy_ppo_config(**SETTINGS[semantics]),
                work,
            )
        except NotMainProcess:
            return
    from accelerate import PartialState

    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(
        json.dumps(
            {
                "processes": PartialState().num_processes,
                "rollouts": rollouts,
                "history": [{k: v for k, v in h.items() if not k.endswith("_s")} for h in result.history],
            }
        )
    )
    state = {f"policy.{k}": v.clone().contiguous() for k, v in policy.state_dict().items()}
    save_file(state, out / "weights.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
