"""PPO-family formulas against numbers worked out by hand (in the comments)."""

import math

import pytest
import torch

from rlhf_core.train import ppo_math as pm


def close(a, b, tol=1e-4):
    assert torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32), atol=tol), (
        a,
        b,
    )


def test_fg_whiten_divides_by_sqrt_of_population_std_and_keeps_mean():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # mean 2, population var 2/3, std 0.8164966, sqrt(std) = 0.9036020 -> scale 1.1066819
    out = pm.fg_whiten(x, mask, shift_mean=False)
    close(out[0, :3], [2 - 1.1066819, 2.0, 2 + 1.1066819])
    close(pm.fg_whiten(x, mask)[0, :3], [-1.1066819, 0.0, 1.1066819])


def test_trl_whiten_uses_bessel_variance():
    x = torch.tensor([[1.0, 2.0, 3.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # mean 2, unbiased var ((1+0+1)/3)*3/2 = 1
    close(pm.whiten(x, mask)[0, :3], [-1.0, 0.0, 1.0])
    close(pm.whiten(x, mask, shift_mean=False)[0, :3], [1.0, 2.0, 3.0])


def test_segment_rewards_land_on_segment_ends_clipped_and_summed():
    out = pm.place_segment_rewards([[1, 5], [2, 2]], [[0.3, -0.5], [0.5, 0.2]], lengths=[3, 4], width=4)
    # row 0: 0.3 at token 1, -0.5 clipped from 5 to L-1 = 2; row 1: both on token 2 -> 0.7
    close(out, [[0.0, 0.3, -0.5, 0.0], [0.0, 0.0, 0.7, 0.0]])
    with pytest.raises(ValueError, match="completion 0"):
        pm.place_segment_rewards([[1]], [[0.1, 0.2]], [3], 4)


def test_legacy_rewards_score_on_last_token_plus_kl_penalty():
    logp = torch.tensor([[-1.0, -2.0, -3.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -3.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    rewards, non_score = pm.legacy_rewards(torch.tensor([2.0]), logp, ref, mask, kl_coef=0.1)
    # kl = [0.5, -1, 0, 0] -> -0.1*kl = [-0.05, 0.1, 0, 0]; score 2 on token 2
    close(non_score, [[-0.05, 0.1, 0.0, 0.0]])
    close(rewards, [[-0.05, 0.1, 2.0, 0.0]])


def test_fine_grained_rewards_subtract_kl_on_valid_tokens():
    raw = torch.tensor([[0.0, 0.3, 0.5, 9.0]])
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    ref = torch.tensor([[-1.5, -1.0, -3.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    pen, kl = pm.fine_grained_rewards(raw, logp, ref, mask, kl_coef=0.3)
    # kl = [0.5, -1, 0, (masked)]; r~ = raw - 0.3 kl = [-0.15, 0.6, 0.5, 0]
    close(kl, [[0.5, -1.0, 0.0, 0.0]])
    close(pen, [[-0.15, 0.6, 0.5, 0.0]])


def test_gae_by_hand_and_horizon():
    r = torch.tensor([[1.0, 0.0, 2.0]])
    v = torch.tensor([[0.5, 1.0, 0.5]])
    # t2: d=2-0.5=1.5, A=1.5; t1: d=0+0.5-1=-0.5, A=-0.5+0.5*1.5=0.25; t0: d=1+1-0.5=1.5, A=1.5+0.125
    close(pm.gae(r, v, gamma=1.0, lam=0.5, horizon=3), [[1.625, 0.25, 1.5]])
    # horizon 2 treats V_2 as 0: t1: d=0-1=-1; t0: d=1+1-0.5=1.5, A=1.5-0.5=1.0; t2 untouched 0
    close(pm.gae(r, v, gamma=1.0, lam=0.5, horizon=2), [[1.0, -1.0, 0.0]])
    # gamma 0.5, lam 1, horizon 3: t2: 1.5; t1: 0+0.25-1=-0.75, A=-0.75+0.75=0; t0: 1+0.5-0.5=1, A=1+0=1
    close(pm.gae(r, v, gamma=0.5, lam=1.0, horizon=3), [[1.0, 0.0, 1.5]])


def test_fine_grained_advantages_whiten_over_valid_tokens():
    pen = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    values = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    adv, ret = pm.fine_grained_advantages(pen, values, mask, gamma=1.0, lam=1.0, whiten_rewards=False)
    # raw A over horizon 2: row0 [1, 0], row1 [2, 0]; valid {1, 0, 2}: mean 1, scale 1.1066819
    close(ret, [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    close(adv[0, :2], [0.0, -1.1066819])
    close(adv[1, 0], 1.1066819)


def test_legacy_advantages_mask_values_and_whiten():
    rewards = torch.tensor([[0.0, 1.0, 5.0]])
    values = torch.tensor([[0.5, 0.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    vals, adv, ret = pm.legacy_advantages(rewards, values, mask, gamma=1.0, lam=1.0, whiten_rewards=False)
    # masked r [0,1,0], V [0.5,0,0]: t1: d=1, A=1; t0: d=0+0-0.5, A=-0.5+1=0.5
    close(vals, [[0.5, 0.0, 0.0]])
    close(ret[0, :2], [1.0, 1.0])
    # valid A {0.5, 1}: mean 0.75, unbiased var 0.125, std 0.3535534
    close(adv[0, :2], [-0.7071068, 0.7071068])


def test_group_relative_advantages():
    r = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    # group 1: mean 2, unbiased std 1 -> (r-2)/1.0001; group 2 has no spread -> 0
    close(pm.group_advantages(r, 3), [-1 / 1.0001, 0.0, 1 / 1.0001, 0.0, 0.0, 0.0])
    close(pm.group_advantages(r, 3, scale=False), [-1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    # leave-one-out: 1-(2+3)/2, 2-(1+3)/2, 3-(1+2)/2
    close(pm.rloo_advantages(r[:3], 3), [-1.5, 0.0, 1.5])


def test_clipped_policy_and_value_losses():
    logp = torch.log(torch.tensor([[1.5, 0.5]]))
    old = torch.zeros(1, 2)
    adv = torch.tensor([[1.0, -1.0]])
    mask = torch.ones(1, 2)
    loss, ratio = pm.policy_loss(logp, old, adv, mask, clip=0.2)
    # token 0: max(-1.5, -1.2) = -1.2; token 1: max(0.5, 0.8) = 0.8; mean -0.2
    close(loss, -0.2)
    close(ratio, [[1.5, 0.5]])
    v = torch.tensor([[1.0, 0.0]])
    v_old = torch.tensor([[0.5, 0.0]])
    ret = torch.tensor([[2.0, 0.3]])
    # token 0: max((1-2)^2, (0.7-2)^2) = 1.69; token 1: 0.09; 0.5 * mean = 0.445
    close(pm.value_loss(v, v_old, ret, mask, clip=0.2), 0.445)


def test_length_weight_and_k3():
    mb = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]])
    full = torch.tensor([[1] * 2 + [0] * 6, [1] * 4 + [0] * 4, [1] * 6 + [0] * 2, [1] * 8])
    assert pm.length_weight(mb, full) == pytest.approx(3 / 5)  # mean 3 over mean 5
    # d = log 2: 2 - log 2 - 1 = 0.3068528
    close(pm.k3_kl(torch.tensor(0.0), torch.tensor(math.log(2))), 0.3068528)


def test_adaptive_kl_controller():
    ctl = pm.AdaptiveKLController(0.2, target=6, horizon=10000)
    ctl.update(9.0, 128)  # error clip(9/6-1)=0.2 -> x(1 + 0.2*128/1e4) = x1.00256
    assert ctl.value == pytest.approx(0.200512)
    ctl.update(3.0, 128)  # error -0.5 clipped to -0.2 -> x0.99744
    assert ctl.value == pytest.approx(0.200512 * 0.99744)
    fixed = pm.AdaptiveKLController(0.3, target=None, horizon=1)
    fixed.update(100.0, 10)
    assert fixed.value == 0.3


def test_running_moments_and_score_transform():
    rm = pm.RunningMoments()
    out = pm.legacy_transform_scores(torch.tensor([1.0, 3.0]), rm, use_scaling=True, use_norm=True, clip=None)
    # after [1,3]: mean 2, var 1, std sqrt(1*2/1) = 1.4142136 -> (x-2)/1.4142136
    close(out, [-0.7071068, 0.7071068])
    rm.update(torch.tensor([5.0]))
    # Chan: delta 3, total 3, old_sum = 1*2 + 9*2*1/3 = 8, var 8/3, mean 3, std sqrt(8/3*3/2) = 2
    assert (rm.mean, rm.std) == (pytest.approx(3.0), pytest.approx(2.0))
    scaled = pm.legacy_transform_scores(torch.tensor([1.0, 3.0]), pm.RunningMoments(), True, False, clip=1.0)
    close(scaled, [0.7071068, 1.0])  # scaling only: [1, 3]/1.4142136 = [0.707, 2.121], clipped to 1
    untouched = pm.legacy_transform_scores(torch.tensor([1.0, 3.0]), pm.RunningMoments(), False, True, None)
    close(untouched, [1.0, 3.0])  # TRL 0.7: norm without scaling does nothing


def test_fine_grained_kl_early_stop_counts_cumulatively():
    stop = pm.KLEarlyStop(threshold=10.0, patience=5)
    seen = [stop.update(kl) for kl in [11, 5, 12, 13, 10, 14, 15]]
    assert seen == [False] * 6 + [True]  # 10 is not > 10; the fifth excess is the last
