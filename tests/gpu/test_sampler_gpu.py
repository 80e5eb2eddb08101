"""The sampler's compiled path on CUDA (skipped without it): a static KV cache and a
``torch.compile``'d decode step emit the same tokens as the eager sampler, and PPO runs on it."""

import pytest
import torch

from rlhf_core.train.ppo import train_ppo
from rlhf_core.train.sampler import SamplingSettings, sample
from tests.core.tiny_rl import PROMPTS, letter_share, tiny_policy, toy_ppo_config

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("do_sample", [False, True])
def test_compiled_static_sampler_matches_the_eager_one(do_sample):
    model, tok = tiny_policy(seed=3)
    model = model.cuda().eval()
    enc = tok(PROMPTS * 2, return_tensors="pt", padding=True, padding_side="left").to("cuda")
    runs = []
    for static in (False, True):
        settings = SamplingSettings(16, do_sample=do_sample, temperature=0.7, top_k=20, static=static, compile=static)
        torch.manual_seed(7)
        runs.append(
            sample(model, enc["input_ids"], enc["attention_mask"], settings, tok.eos_token_id, tok.pad_token_id)
        )
    assert torch.equal(runs[0], runs[1])


def test_ppo_rollouts_on_the_compiled_sampler(tmp_path):
    policy, tok = tiny_policy(seed=0)
    result = train_ppo(
        policy.cuda(), tok, PROMPTS, letter_share, toy_ppo_config(steps=2, compiled_sampling=True), tmp_path
    )
    assert result.stop_reason is None and result.steps == 2
