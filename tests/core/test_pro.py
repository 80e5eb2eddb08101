"""PRO (docs/sources.md §6.4) against hand-computed values, and its trainer on a tiny policy."""

import math

import pandas as pd
import pytest
import torch

from rlhf_core.config import TrainConfig
from rlhf_core.config.rl import PROConfig
from rlhf_core.train.pro import pair_rewards, pro_loss
from tests.core.tiny_rl import one_thread, tiny_policy


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def test_two_candidate_pro_loss_by_hand():
    # s0 = -2/2 = -1, s1 = -6/3 = -2, T = r0 - r1 = 0.5
    # rank = log(1e-10 + e^{-0.5} + e^{-1.0}) + 0.5 = log(0.6065307 + 0.3678794) + 0.5 = 0.4740770
    # sft = 0.05 * (2-1)^2 * -(-2) = 0.1
    loss = pro_loss(
        torch.tensor([[-2.0, -6.0]]),
        torch.tensor([[2.0, 3.0]]),
        torch.tensor([[1.0, 0.5]]),
        torch.tensor([0]),
        sft_weight=0.05,
    )
    assert loss.item() == pytest.approx(0.4740770 + 0.1, abs=1e-6)


def test_ranking_follows_data_order_even_when_reward_is_lower():
    # r0 < r1: T = -1, s0 = -1, s1 = -2 -> log(e^{1} + e^{2}) - 1 = log(2.7182818 + 7.3890561) - 1 = 1.3132617
    loss = pro_loss(
        torch.tensor([[-1.0, -2.0]]), torch.ones(1, 2), torch.tensor([[0.0, 1.0]]), torch.tensor([0]), sft_weight=0.0
    )
    assert loss.item() == pytest.approx(1.3132617, abs=1e-6)


def test_three_candidate_stages_and_sft_weight():
    # s = [-1, -2, -3], r = [3, 2, 0]
    # k=0: T_neg = [1, 3], T_pos 3: log(e^-3 + e^-2 + e^-9) + 3 = log(0.0497871+0.1353353+0.0001234) + 3 = 1.3139281
    # k=1: T_neg = [2], T_pos 2: log(e^-4 + e^-6) + 4 = log(0.0183156 + 0.0024788) + 4 = 0.1269280
    # sft: 0.05 * (3-1)^2 * -(sum logp of candidate 1 = -4) = 0.8
    loss = pro_loss(
        torch.tensor([[-1.0, -4.0, -3.0]]),
        torch.tensor([[1.0, 2.0, 1.0]]),
        torch.tensor([[3.0, 2.0, 0.0]]),
        torch.tensor([1]),
        sft_weight=0.05,
    )
    assert loss.item() == pytest.approx(1.3139281 + 0.1269280 + 0.8, abs=1e-6)


def test_pair_rewards_use_columns_or_the_ranking():
    rows = pd.DataFrame({"prompt": ["p"], "chosen": ["a"], "rejected": ["b"]})
    assert pair_rewards(rows).tolist() == [[1.0, 0.0]]
    rows["chosen_reward"], rows["rejected_reward"] = [0.2], [0.7]
    assert pair_rewards(rows).tolist() == [[pytest.approx(0.2), pytest.approx(0.7)]]


def test_train_pro_ranks_chosen_above_rejected(tmp_path):
    from rlhf_core.train.pro import train_pro

    policy, tok = tiny_policy(seed=1)
    pairs = pd.DataFrame(
        {
            "prompt": ["the cat", "the dog", "a cat", "a dog"] * 2,
            "chosen": ["good nice happy"] * 8,
            "rejected": ["bad awful sad"] * 8,
        }
    )

    def margin():
        from rlhf_core.train.batching import collate, encode_pairs, token_logprobs

        enc_c = encode_pairs(tok, pairs["prompt"].tolist(), pairs["chosen"].tolist(), 64)
        enc_r = encode_pairs(tok, pairs["prompt"].tolist(), pairs["rejected"].tolist(), 64)
        with torch.no_grad():
            c, mc = token_logprobs(policy, collate(enc_c.ids, enc_c.n_prompt, tok.pad_token_id))
            r, mr = token_logprobs(policy, collate(enc_r.ids, enc_r.n_prompt, tok.pad_token_id))
        return float((c.sum(-1) / mc.sum(-1) - r.sum(-1) / mr.sum(-1)).mean())

    before = margin()
    cfg = PROConfig(train=TrainConfig(epochs=6, batch_size=4, lr=3e-3, max_length=64), sft_weight=0.05)
    result = train_pro(policy, tok, pairs, cfg, tmp_path)
    assert result.steps == 12 and all(math.isfinite(h["loss"]) for h in result.history)
    assert margin() > before + 0.5
