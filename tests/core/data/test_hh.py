"""[WA] Anthropic/hh-rlhf RM pairs and first-turn PPO prompts (docs/sources.md §1.4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_helpers import build_task, load_task, quarantine_reasons


@pytest.fixture(scope="module")
def res(word_tokenizer_dir):
    tok = f"{{path: {word_tokenizer_dir}}}"
    return build_task(
        load_task(
            "hh_rlhf",
            [
                "sources.hh_rlhf.path=data/fixtures/hh_rlhf",
                "sources.hh_first_prompt.path=data/fixtures/hh_first_prompt",
                f"datasets.rm_pairs.options.tokenizer={tok}",
                "datasets.rm_pairs.options.max_length=30",  # word-level tokens: 30 words
                f"datasets.ppo_prompts.options.tokenizer={tok}",
            ],
        )
    )


def test_pairs_split_before_last_reply_and_bad_rows_quarantined(res):
    raw = res["hh_rlhf"]
    assert raw.counts() == {"input_rows": 11, "kept_rows": 6, "quarantined_rows": 5}
    assert [q[:3] for q in quarantine_reasons(raw)] == [
        ("harmless-base/train.jsonl.gz", 2, "rejected"),  # different conversation
        ("harmless-base/train.jsonl.gz", 3, "chosen"),  # empty text
        ("harmless-base/train.jsonl.gz", 4, "chosen"),  # no Assistant turn
        ("helpful-base/train.jsonl.gz", 4, "<line>"),  # broken JSON
        ("helpful-base/train.jsonl.gz", 5, "rejected"),  # missing field
    ]
    assert quarantine_reasons(raw)[0][3] == "does not share the conversation before the chosen reply"
    row = raw.kept.set_index("id").loc["helpful-base/train-2"]
    assert row.prompt == (
        "\n\nHuman: Hi there\n\nAssistant: Hello! What can I do for you?"
        "\n\nHuman: What is the capital of Peru?\n\nAssistant:"
    )
    assert (row.chosen, row.rejected, row.split) == (" Lima.", " Cusco.", "train")


def test_long_pairs_dropped(res):
    pairs = res["rm_pairs"]
    assert pairs.counts() == {
        "input_rows": 6,
        "kept_rows": 4,
        "quarantined_rows": 0,
        "dropped_longer_than_max_length": 2,
    }
    assert sorted(pairs.kept["id"]) == [
        "harmless-base/train-1",
        "helpful-base/test-1",
        "helpful-base/train-1",
        "helpful-base/train-2",
    ]


def test_ppo_prompts_long_queries_cut_to_2_to_7_tokens(res):
    src = res["hh_first_prompt"]
    assert [q[1:3] for q in quarantine_reasons(src)] == [(4, "user"), (6, "user")]  # None, whitespace-only
    prompts = res["ppo_prompts"]
    # 'What is your name?' and the query of exactly 200 characters are not longer than 200.
    assert prompts.counts() == {
        "input_rows": 4,
        "kept_rows": 2,
        "quarantined_rows": 0,
        "dropped_query_not_longer_than_200_chars": 2,
    }
    lengths = np.random.default_rng(42).choice(range(2, 8), size=2)
    expected = [" ".join(q.split()[:n]) for q, n in zip(prompts.kept["query"], lengths)]
    assert list(prompts.kept["id"]) == ["train-1", "train-5"]
    assert list(prompts.kept["prompt"]) == expected
    assert all(2 <= len(p.split()) <= 7 for p in prompts.kept["prompt"])


def test_missing_parquet_column_is_quarantined(tmp_path):
    from rlhf_core.config import SourceConfig
    from rlhf_core.data.registry import get_loader

    pd.DataFrame({"prompt": ["a"]}).to_parquet(tmp_path / "x.parquet")
    src = SourceConfig(loader="hh_first_prompt", path=str(tmp_path), files={"train": "x.parquet"})
    res = get_loader("hh_first_prompt")(src, None)
    assert res.quarantined[["row", "field", "reason"]].values.tolist() == [[1, "user", "missing field"]]
