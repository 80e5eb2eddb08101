"""The offline-RL, DPO and Bradley-Terry losses against numbers computed by hand
(docs/sources.md §6.2, §6.3, §5.5)."""

import math

import pytest
import torch

from rlhf_core.train.losses import bradley_terry_loss, dpo_loss, offline_loss

# One response of two tokens (a third, padded position is masked out).
LOGP = torch.tensor([[-1.0, -2.0, 0.0]])
REF = torch.tensor([[-1.5, -2.5, 0.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0]])
R, A = torch.tensor([0.5]), torch.tensor([0.4])


def loss(algorithm, **kw):
    return offline_loss(algorithm, LOGP, MASK, reward=R, advantage=A, ref_logp=REF, **kw).item()


def test_nll_sums_response_tokens():
    assert loss("nll") == pytest.approx(3.0)


def test_wbc_weights_nll_by_reward():
    assert loss("wbc") == pytest.approx(1.5)


def test_r_gold_floors_detached_token_probability():
    expected = 0.5 * (math.exp(-1) * 1 + max(math.exp(-2), 0.1) * 2)
    assert loss("r_gold") == pytest.approx(expected)


def test_a_lol_clips_the_sequence_importance_weight():
    # NLL_ref - NLL = 4 - 3, so w = e, clipped to 1 + 0.9.
    assert loss("a_lol", eps=0.9) == pytest.approx(0.4 * 1.9 * 3.0)
    assert loss("a_lol", eps=None) == pytest.approx(0.4 * math.e * 3.0, rel=1e-6)


def test_r_lol_uses_reward_instead_of_advantage():
    assert loss("r_lol", eps=0.9) == pytest.approx(0.5 * 1.9 * 3.0)


def test_negative_advantage_is_clamped_to_zero():
    out = offline_loss("a_lol", LOGP, MASK, advantage=torch.tensor([-0.3]), ref_logp=REF, eps=0.9)
    assert out.item() == 0.0


def test_a_lol_ref_free_and_kl_variants():
    assert loss("a_lol_ref_free") == pytest.approx(1.2)
    assert loss("a_lol_kl", kl_beta=0.1) == pytest.approx(0.4 * 3.0 + 0.1 * (4.0 - 3.0))


def test_r_lol_and_a_lol_take_the_same_kl_option_with_the_clip_at_zero():
    # eps = 0 clips w to 1; the KL term is beta * (NLL_ref - NLL) = 0.1 * (4 - 3).
    assert loss("a_lol", eps=0.0, kl_beta=0.1) == pytest.approx(0.4 * 1.0 * 3.0 + 0.1 * 1.0)
    assert loss("r_lol", eps=0.0, kl_beta=0.1) == pytest.approx(0.5 * 1.0 * 3.0 + 0.1 * 1.0)
    assert loss("a_lol", eps=0.0, kl_beta=0.1) == pytest.approx(loss("a_lol_kl", kl_beta=0.1))
    with pytest.raises(ValueError, match="ppo_clip 0"):
        loss("a_lol", eps=0.9, kl_beta=0.1)


def test_a_lol_seq_weights_each_token_by_its_own_ratio():
    assert loss("a_lol_seq", eps=0.9) == pytest.approx(0.4 * math.exp(0.5) * 3.0, rel=1e-6)


def test_a_lol_gradient_flows_only_through_the_nll():
    logp = LOGP.clone().requires_grad_(True)
    offline_loss("a_lol", logp, MASK, advantage=A, ref_logp=REF, eps=0.9).sum().backward()
    assert logp.grad[0].tolist() == pytest.approx([-0.4 * 1.9, -0.4 * 1.9, 0.0])


def test_algorithms_needing_a_reference_refuse_to_run_without_one():
    with pytest.raises(ValueError, match="reference"):
        offline_loss("a_lol", LOGP, MASK, advantage=A)


def test_dpo_with_and_without_reference():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-3.0, -5.0, -4.0, -4.5))
    assert dpo_loss(pc, pr, rc, rr, beta=0.1).item() == pytest.approx(math.log1p(math.exp(-0.15)))
    assert dpo_loss(pc, pr, None, None, beta=0.1).item() == pytest.approx(math.log1p(math.exp(-0.2)))


def test_bradley_terry():
    assert bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == pytest.approx(
        math.log1p(math.exp(-1))
    )
