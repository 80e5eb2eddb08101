"""A run interrupted after a checkpoint resumes and ends with the same weights as an uninterrupted one."""

import pytest
import torch

from rlhf_core.config import TrainConfig
from rlhf_core.train.loop import BatchOrder, Engine

CFG = TrainConfig(epochs=1, batch_size=4, lr=0.1, checkpoint_every=2)
X, Y = torch.randn(24, 3, generator=torch.Generator().manual_seed(0)), torch.randn(24)


def fit(work, crash_at=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    calls = {"n": 0}

    def step(idx):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise KeyboardInterrupt
        return ((model(X[idx]).squeeze(-1) - Y[idx]) ** 2).mean(), {}

    result = Engine(model, CFG, 6).run(BatchOrder(24, 4, seed=1), step, work, "test")
    return model, result


def test_resume_matches_an_uninterrupted_run(tmp_path):
    straight, _ = fit(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", crash_at=4)  # checkpoint at step 2 exists, step 4 never finishes
    resumed, result = fit(tmp_path / "b")
    assert result.resumed_from == 2
    assert len(result.history) == 6
    assert torch.allclose(straight.weight, resumed.weight)


def test_priority_sampling_only_draws_rows_with_positive_weight():
    order = BatchOrder(6, 50, seed=0, weights=torch.tensor([0.0, 1.0, 0.0, 2.0, -1.0, 0.0]))
    assert set(order(0).tolist()) <= {1, 3}
