"""[LoL] Reddit comment scores -> reddit_pos / reddit_neg records (docs/sources.md §1.2)."""

from __future__ import annotations

import json

import pytest
from data_helpers import EOS, build_task, load_task, quarantine_reasons


def build(tok_dir, sample_size=5):
    return build_task(
        load_task(
            "reddit",
            [
                "sources.reddit.path=data/fixtures/reddit",
                f"datasets.reddit_generation.options.tokenizer={{path: {tok_dir}}}",
                "datasets.reddit_generation.options.max_tokens=12",  # word-level tokens
                f"datasets.reddit_generation.options.sample_size={sample_size}",
                "datasets.reddit_generation.options.test_size=1",
                "datasets.reddit_generation.options.val_size=1",
            ],
        )
    )


@pytest.fixture(scope="module")
def res(word_tokenizer_dir):
    return build(word_tokenizer_dir)


def test_loader_drops_nan_and_quarantines_bad_scores(res):
    raw = res["reddit"]
    assert raw.counts() == {"input_rows": 10, "kept_rows": 7, "quarantined_rows": 1, "dropped_nan_text": 2}
    assert quarantine_reasons(raw) == [("reddit/comments_positive.csv", 8, "score", "not a number: 'lots'")]


def test_records_filters_and_splits(res):
    gen = res["reddit_generation"]
    assert gen.counts() == {
        "input_rows": 7,
        "kept_rows": 5,
        "quarantined_rows": 0,
        "dropped_not_sampled": 0,
        "dropped_over_max_tokens": 1,
        "dropped_over_max_words": 1,
    }
    rows = gen.kept.set_index("id")
    # order within a polarity is pandas' sample(random_state=901); first row test, next val, rest train
    assert list(zip(rows.index, rows["split"])) == [
        ("positive-p1", "test"),
        ("positive-p6", "val"),
        ("positive-p2", "train"),
        ("negative-n1", "test"),
        ("negative-n3", "val"),
    ]
    assert rows.loc["positive-p1", "prompt"] == f"What is your favourite book?{EOS}"  # whitespace normalised
    assert rows.loc["positive-p2", "completion"] == f"See <URL> and <URL> for more.{EOS}"
    assert json.loads(rows.loc["negative-n1", "meta"]) == {"score": -200.0, "parent_score": 10.0}


def test_sampling_limits_each_polarity(word_tokenizer_dir):
    gen = build(word_tokenizer_dir, sample_size=2)["reddit_generation"]
    assert gen.counts()["dropped_not_sampled"] == 3  # 5 positive -> 2; 2 negative -> 2
    assert gen.kept.groupby("polarity").size().to_dict() == {"negative": 2, "positive": len(gen.kept) - 2}
