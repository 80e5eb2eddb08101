"""The batching engine: budgeted length-sorted batches, input order, truncation counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf_core.rewards.batching import encode, last_token_states, pad_batch, plan_batches, run_batched


def test_plan_batches_respects_budget_covers_every_input_once_and_sorts_by_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=500).tolist()
    batches = plan_batches(lengths, max_batch_tokens=1000, max_batch_size=32)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    for b in batches:
        assert len(b) <= 32
        assert len(b) * max(lengths[i] for i in b) <= 1000
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_an_input_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = plan_batches([50, 5000, 40], max_batch_tokens=100, max_batch_size=8)
    assert [b.tolist() for b in batches] == [[1], [0, 2]]  # 2 x 50 tokens fits the budget exactly


def test_run_batched_returns_results_in_input_order():
    features = [{"input_ids": list(range(1, n + 1))} for n in (3, 9, 1, 6, 9, 2)]

    def forward(batch):  # sum of real ids: padding must not leak in
        return (batch["input_ids"] * batch["attention_mask"]).sum(dim=1).float()

    out = run_batched(forward, features, pad_id=99, device="cpu", max_batch_tokens=12, max_batch_size=4)
    assert out.tolist() == [sum(f["input_ids"]) for f in features]


def test_pad_batch_pads_right_and_masks():
    batch = pad_batch([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    hidden = torch.arange(6.0).view(2, 3, 1)
    assert last_token_states(hidden, batch["attention_mask"]).flatten().tolist() == [2.0, 3.0]


def test_encode_counts_truncation_for_single_texts_and_pairs():
    from tests.conftest import roberta_tokenizer

    tok = roberta_tokenizer()
    single = encode(tok, ["abc", "x" * 50], max_length=10)
    assert single.truncated.tolist() == [False, True] and single.n_truncated == 1
    assert [len(f["input_ids"]) for f in single.features] == [5, 10]
    assert single.features[0]["input_ids"] == tok("abc")["input_ids"]
    pair = encode(tok, ["ab", "y" * 30], ["cd", "z" * 30], max_length=12)
    assert pair.truncated.tolist() == [False, True]
    assert len(pair.features[1]["input_ids"]) == 12
    assert pair.features[0]["input_ids"] == tok("ab", "cd")["input_ids"]


def test_empty_input_gives_empty_output():
    assert run_batched(lambda b: b["input_ids"].sum(1), [], pad_id=0, device="cpu").shape == (0,)


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_does_not_change_results(progress, capsys):
    features = [{"input_ids": [1, 2]}, {"input_ids": [3]}]
    out = run_batched(lambda b: b["input_ids"][:, 0].float(), features, 0, "cpu", progress=progress)
    assert out.tolist() == [1.0, 3.0]
    assert ("text" in capsys.readouterr().err) is progress
