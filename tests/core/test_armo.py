"""ArmoRM stage 1 and stage 2 (docs/sources.md §5.7) on synthetic embeddings whose truth is known."""

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from rlhf_core.train import armo


def test_ridge_probes_recover_exact_linear_objectives_and_skip_missing_labels():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(400, 8))
    w_true = rng.normal(size=(3, 8))
    labels = h @ w_true.T
    labels[rng.random(400) < 0.3, 1] = np.nan  # objective 1 is missing on ~30% of rows
    probes = armo.fit_probes(h, labels)
    assert probes.weights.shape == (3, 8)
    np.testing.assert_allclose(probes.weights, w_true, atol=1e-3)
    # noise-free targets: the least regularised alpha fits best on validation
    assert probes.best_alpha == [1e-4, 1e-4, 1e-4]


def test_alpha_sweep_picks_the_lowest_validation_loss_and_shrinks_pure_noise():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(60, 40))
    labels = np.stack([h @ rng.normal(size=40) + rng.normal(size=60), rng.normal(size=60)], axis=1)
    probes = armo.fit_probes(h, labels)
    for k in range(2):
        assert len(probes.val_mse[k]) == len(armo.RIDGE_ALPHAS)
        assert probes.best_alpha[k] == armo.RIDGE_ALPHAS[int(np.argmin(probes.val_mse[k]))]
    # labels independent of the embedding: predicting ~0 is best, so the strongest shrinkage wins
    assert probes.best_alpha[1] == 1e4
    assert np.abs(probes.weights[1]).max() < np.abs(probes.weights[0]).max() / 10


def test_probes_refuse_an_objective_without_labels():
    h = np.ones((10, 2))
    labels = np.full((10, 1), np.nan)
    with pytest.raises(ValueError, match="'helpfulness' has no label"):
        armo.fit_probes(h, labels, names=["helpfulness"])


def test_verbosity_penalty_is_the_smallest_that_decorrelates():
    rng = np.random.default_rng(2)
    v, a, b = rng.normal(size=(3, 20000))
    rewards = np.stack([a + 0.5 * v, b, 2 * v, a - v, v], axis=1)
    got = armo.verbosity_penalties(rewards)
    # dim 0: corr(a + (0.5 - λ) v, v) is ~0.05 at λ = .45 and ~0 at λ = .5 -> 0.5
    # dim 1: independent -> 0; dim 2: (2 - λ) v stays perfectly correlated -> keeps 1
    # dim 3: already negatively correlated -> 0; dim 4 (verbosity itself) -> 1
    np.testing.assert_array_equal(got, [0.5, 0.0, 1.0, 0.0, 1.0])


def test_reward_transform_subtracts_penalised_verbosity_and_zeroes_it():
    t = armo.reward_transform(np.array([0.5, 0.0, 1.0]), verbosity_dim=2)
    r = torch.tensor([[3.0, 1.0, 2.0]])
    # R_0 = 3 - 0.5*2, R_1 = 1 - 0*2, R_2 = 2 - 1*2
    torch.testing.assert_close(r @ t, torch.tensor([[2.0, 1.0, 0.0]]))


def test_gating_weights_are_a_distribution_over_objectives():
    torch.manual_seed(0)
    gate = armo.GatingNetwork(6, 4, hidden=8, n_hidden=2, dropout=0.0).eval()
    g = gate(torch.randn(3, 2, 6))
    torch.testing.assert_close(g.sum(-1), torch.ones(3, 2))


def _pairs(rng, n, h_dim=12):
    """Prompts of two types (sign of prompt coordinate 0). For type A the chosen response is better
    on objective 0, for type B on objective 1; objectives 2-4 are noise (4 plays verbosity)."""
    prompt_type = rng.random(n) < 0.5
    prompt = rng.normal(size=(n, h_dim)) * 0.3
    prompt[:, 0] += np.where(prompt_type, 2.0, -2.0)
    resp = rng.normal(size=(n, 2, h_dim))
    key = np.where(prompt_type, 0, 1)
    gap = np.abs(rng.normal(size=n)) + 0.5
    resp[np.arange(n), 0, key] = resp[np.arange(n), 1, key] + gap  # chosen wins on the key objective
    return resp, np.repeat(prompt[:, None], 2, axis=1), prompt_type


def test_gating_learns_to_weight_the_informative_objective():
    rng = np.random.default_rng(3)
    resp, prompt, prompt_type = _pairs(rng, 1500)
    w = np.eye(5, 12)  # exact probes: objective k reads embedding coordinate k
    cfg = armo.GatingConfig(steps=150, batch_size=128, lr=1e-2, hidden=32, n_hidden=2, dropout=0.0)
    model, report = armo.train_gating(resp, prompt, w, cfg)

    # a uniform mixture of the five objectives, for comparison, on the same held-out pairs
    uniform = (resp[:, 0, :5] - resp[:, 1, :5]).sum(-1) > 0
    assert report.n_train == 1200 and report.n_val == 300
    assert report.val_accuracy > 0.95 > uniform.mean()
    assert report.losses[-1] < report.losses[0]
    with torch.no_grad():
        gates = model.gating(torch.as_tensor(prompt[:, 0], dtype=torch.float32)).numpy()
    a, b = gates[prompt_type], gates[~prompt_type]
    assert a[:, 0].mean() > 2 * a[:, 1].mean()
    assert b[:, 1].mean() > 2 * b[:, 0].mean()


def test_served_score_applies_the_debiasing_transform():
    torch.manual_seed(0)
    gate = armo.GatingNetwork(3, 3, hidden=4, n_hidden=1, dropout=0.0).eval()
    w = torch.eye(3)
    t = armo.reward_transform(np.array([0.5, 0.0, 1.0]), verbosity_dim=2)
    model = armo.ArmoRM(w, t, gate).eval()
    h, p = torch.tensor([[3.0, 1.0, 2.0]]), torch.randn(1, 3)
    with torch.no_grad():
        g = gate(p)[0]
        # R = (2, 1, 0) from the transform test; score = Σ g_k R_k, the released Σ r_j (g Tᵀ)_j
        assert model(h, p).item() == pytest.approx(float(2 * g[0] + 1 * g[1]), rel=1e-6)
        assert model(h, p).item() == pytest.approx(float((h @ w.T * (g @ t.T)).sum()), rel=1e-6)


def test_model_round_trips_through_safetensors(tmp_path):
    torch.manual_seed(0)
    model = armo.ArmoRM(torch.randn(3, 4), torch.eye(3), armo.GatingNetwork(4, 3, hidden=5, n_hidden=1)).eval()
    save_file(model.state_dict(), tmp_path / "armo.safetensors")
    copy = armo.ArmoRM(torch.zeros(3, 4), torch.zeros(3, 3), armo.GatingNetwork(4, 3, hidden=5, n_hidden=1)).eval()
    copy.load_state_dict(load_file(tmp_path / "armo.safetensors"))
    h, p = torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(copy(h, p), model(h, p))


def test_tables_from_the_embedding_builders_become_arrays():
    stage1 = pd.DataFrame(
        {
            "id": ["0", "1"],
            "embedding": [np.ones(3, np.float32), np.zeros(3, np.float32)],
            "a": [1.0, np.nan],
            "b": [0.5, 2.0],
        }
    )
    x, y = armo.objective_arrays(stage1, ["a", "b"])
    assert x.shape == (2, 3) and np.isnan(y[1, 0]) and y[1, 1] == 2.0
    stage2 = pd.DataFrame({"embedding": [[np.ones(3), np.zeros(3)]], "prompt_embedding": [[np.ones(3), np.ones(3)]]})
    z, p = armo.pair_arrays(stage2)
    assert z.shape == p.shape == (1, 2, 3) and z[0, 1].sum() == 0
    with pytest.raises(ValueError, match="lacks column"):
        armo.objective_arrays(stage1, ["c"])
