"""TRL as the oracle: on the same tiny model and batch, our SFT, DPO and Bradley-Terry losses equal
TRL's ``SFTTrainer``, ``DPOTrainer`` and ``RewardTrainer`` losses within 1e-5 in fp32.

TRL tokenizes our ``prompt``/``completion`` and ``prompt``/``chosen``/``rejected`` columns itself
(so its tokens are checked too), except for the reward model: our RM text has no EOS (docs/sources.md
§5.2) while TRL appends one to raw text, so TRL gets our token ids as a pre-tokenized dataset.

Our SFT loss is the summed response NLL averaged over sequences (§6.2); TRL's is the mean over
response tokens. The two differ by the known factor ``sequences / response tokens``, so the token
mean of our log-probs equals TRL's loss and our gradient times that factor equals TRL's gradient.
"""

import copy

import pandas as pd
import pytest
import torch
from datasets import Dataset
from engine_worker import ROWS, fixtures, tiny_lm

from rlhf_core.train.batching import collate, encode_pairs, token_logprobs
from rlhf_core.train.losses import bradley_terry_loss, dpo_loss, offline_loss
from rlhf_core.train.reward_model import sequence_scores

PAIRS = pd.DataFrame(
    {"prompt": ROWS["prompt"][:6], "chosen": ROWS["completion"][:6], "rejected": ROWS["completion"][6:12].tolist()}
)
TOL = 1e-5


def first_batch(trainer) -> dict:
    return next(iter(trainer.get_train_dataloader()))


def common_args(tmp_path, batch: int) -> dict:
    return dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=batch,
        report_to=[],
        use_cpu=True,
        bf16=False,
        fp16=False,
        seed=0,
    )


def grads(model) -> torch.Tensor:
    out = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    model.zero_grad(set_to_none=True)
    return out


def test_sft_loss_and_gradient_equal_trl_sft_trainer(tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = tiny_lm()
    rows = ROWS.iloc[:8]
    data = Dataset.from_pandas(rows[["prompt", "completion"]])
    trainer = SFTTrainer(
        model=model,
        processing_class=tok,
        train_dataset=data,
        args=SFTConfig(**common_args(tmp_path, len(rows)), max_length=48, completion_only_loss=True),
    )
    batch = first_batch(trainer)
    model.train()
    trl_loss = trainer.compute_loss(model, batch)
    trl_loss.backward()
    trl_grad = grads(model)

    enc = encode_pairs(tok, rows["prompt"].tolist(), rows["completion"].tolist(), 48)
    trl_ids = [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
    assert sorted(trl_ids) == sorted(enc.ids)  # the same tokens, EOS included
    logp, mask = token_logprobs(model, collate(enc.ids, enc.n_prompt, tok.pad_token_id))
    ours = offline_loss("nll", logp, mask).mean()
    ours.backward()
    factor = len(rows) / mask.sum()
    assert float(-logp.sum() / mask.sum()) == pytest.approx(trl_loss.item(), abs=TOL)
    assert float(ours * factor) == pytest.approx(trl_loss.item(), abs=TOL)
    assert (grads(model) * factor - trl_grad).abs().max() < TOL
    assert trl_grad.abs().max() > 1e-2  # a gradient worth comparing


def test_dpo_loss_equals_trl_dpo_trainer(tmp_path):
    from trl import DPOConfig, DPOTrainer

    policy, tok = tiny_lm()
    ref = copy.deepcopy(policy).eval()
    torch.manual_seed(5)
    with torch.no_grad():  # a policy that has moved away from its reference
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # TRL 1.16 tries to load a reference by the model's (empty) name unless given one.
    data = Dataset.from_pandas(PAIRS)
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        processing_class=tok,
        train_dataset=data,
        args=DPOConfig(**common_args(tmp_path, len(PAIRS)), max_length=None, beta=0.1),
    )
    trl_loss = trainer.compute_loss(policy, first_batch(trainer)).item()

    def seq_logp(model, column):
        enc = encode_pairs(tok, PAIRS["prompt"].tolist(), PAIRS[column].tolist(), 10**6)
        logp, _ = token_logprobs(model, collate(enc.ids, enc.n_prompt, tok.pad_token_id))
        return logp.sum(-1)

    with torch.no_grad():
        ours = (
            dpo_loss(
                seq_logp(policy, "chosen"),
                seq_logp(policy, "rejected"),
                seq_logp(ref, "chosen"),
                seq_logp(ref, "rejected"),
                beta=0.1,
            )
            .mean()
            .item()
        )
    assert abs(ours - 0.6931) > 1e-2  # policy and reference differ, so the loss is not log 2
    assert ours == pytest.approx(trl_loss, abs=TOL)


def test_bradley_terry_loss_equals_trl_reward_trainer(tmp_path):
    from transformers import GPT2ForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    _, tok = tiny_lm()
    torch.manual_seed(0)
    model = GPT2ForSequenceClassification(
        fixtures._gpt2_config(
            tok, num_labels=1, pad_token_id=tok.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
        )
    )
    chosen, rejected = (
        encode_pairs(tok, PAIRS["prompt"].tolist(), PAIRS[c].tolist(), 48, add_eos=False)
        for c in ("chosen", "rejected")
    )
    data = Dataset.from_dict({"chosen_ids": chosen.ids, "rejected_ids": rejected.ids})
    trainer = RewardTrainer(
        model=model,
        processing_class=tok,
        train_dataset=data,
        args=RewardConfig(**common_args(tmp_path, len(PAIRS)), center_rewards_coefficient=None),
    )
    trl_loss = trainer.compute_loss(model, first_batch(trainer)).item()
    with torch.no_grad():
        scores = sequence_scores(model, tok.pad_token_id, chosen.ids + rejected.ids)
        ours = bradley_terry_loss(scores[: len(PAIRS)], scores[len(PAIRS) :]).mean().item()
    assert ours == pytest.approx(trl_loss, abs=TOL)
