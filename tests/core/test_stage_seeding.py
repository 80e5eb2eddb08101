"""Each stage partition starts from its own fixed state of the global generators, so under ``rlhf run``
(many steps in one process) an artifact does not depend on which steps ran before it."""

import random

import numpy as np
import torch

from rlhf_core.config import load_config, task_config_path
from rlhf_core.stages.base import stage
from rlhf_core.store import ArtifactStore


@stage(lambda task, name: [], each=lambda task: ["a", "b"])
def draws(ctx, name: str):
    """What a new head's initial weights or a sampler would draw first."""
    return torch.rand(3).tolist(), np.random.rand(), random.random()


def test_a_partition_draws_the_same_whatever_drew_before_it(tmp_path):
    task, store = load_config(task_config_path("demo")), ArtifactStore(tmp_path)
    first = draws(task, store, "a")
    torch.rand(1000), np.random.rand(7), random.random()  # another step ran before in the same process
    assert draws(task, store, "a") == first
    assert draws(task, store, "b") != first  # partitions do not share one stream
