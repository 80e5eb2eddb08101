"""Our KV-cache sampler emits exactly HF ``generate``'s tokens for the same seed and settings."""

import pytest
import torch

from rlhf_core.train.sampler import SamplingSettings, sample
from tests.core.tiny_rl import one_thread, tiny_policy, tiny_t5

PROMPTS = ["the cat sat", "a dog", "very good nice happy cat on the mat", "on"] * 3


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def policy():
    model, tok = tiny_policy(seed=3)
    # Make EOS likely, so rows finish at different steps and the whole batch stops early.
    v = torch.randn(model.config.n_embd, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        model.transformer.ln_f.bias.copy_(v)
        model.lm_head.weight[tok.eos_token_id] = 3.0 * v / v.square().sum()
    return model.eval(), tok


@pytest.mark.parametrize(
    "settings",
    [
        SamplingSettings(30, do_sample=True),
        SamplingSettings(30, do_sample=True, temperature=0.7, top_k=20),
        SamplingSettings(30, do_sample=True, top_p=0.9),
        SamplingSettings(30, do_sample=False),
        SamplingSettings(30, do_sample=True, temperature=0.7, top_k=20, static=True),  # preallocated cache
        SamplingSettings(30, do_sample=False, static=True),
    ],
)
def test_same_tokens_as_hf_generate(policy, settings):
    model, tok = policy
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(7)
    hf = model.generate(**enc, **settings.hf_kwargs(), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    hf = hf[:, enc["input_ids"].shape[1] :]  # drop the prompt
    torch.manual_seed(7)
    ours = sample(model, enc["input_ids"], enc["attention_mask"], settings, tok.eos_token_id, tok.pad_token_id)
    assert torch.equal(hf, ours)
    finished = (ours == tok.eos_token_id).any(1)
    if settings.do_sample:  # the EOS bias is doing its job: some rows stop, after EOS only padding
        assert finished.any()
    for row in ours[finished]:
        end = int((row == tok.eos_token_id).nonzero()[0])
        assert (row[end + 1 :] == tok.pad_token_id).all()


@pytest.mark.parametrize("settings", [SamplingSettings(20, temperature=0.7, top_k=20), SamplingSettings(20, False)])
def test_encoder_decoder_same_tokens_as_hf_generate(settings):
    model, tok = tiny_t5(seed=2)
    model.eval()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(7)
    hf = model.generate(**enc, **settings.hf_kwargs(), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(7)
    ours = sample(model, enc["input_ids"], enc["attention_mask"], settings, tok.eos_token_id, tok.pad_token_id)
    assert torch.equal(hf[:, 1:], ours)  # generate's output starts with the decoder start token


@pytest.mark.parametrize(
    "settings", [SamplingSettings(30, do_sample=True), SamplingSettings(30, do_sample=True, temperature=0.7, top_k=20)]
)
def test_a_shard_samples_its_rows_of_the_whole_batch(policy, settings):
    """Rows 4..7 sampled alone as a ``Shard`` of the 12-row batch get the whole batch's draws: the same
    tokens, up to where all of the shard's rows have ended (the whole batch's rows are padding after)."""
    from rlhf_core.train.sampler import Shard

    model, tok = policy
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    torch.manual_seed(7)
    whole = sample(model, enc["input_ids"], enc["attention_mask"], settings, tok.eos_token_id, tok.pad_token_id)
    torch.manual_seed(7)
    part = sample(
        model,
        enc["input_ids"][4:8],
        enc["attention_mask"][4:8],
        settings,
        tok.eos_token_id,
        tok.pad_token_id,
        Shard(4, len(PROMPTS)),
    )
    width = part.shape[1]
    assert width <= whole.shape[1]  # the shard stops once its own rows have ended
    assert torch.equal(part, whole[4:8, :width])
    assert bool((whole[4:8, width:] == tok.pad_token_id).all())
