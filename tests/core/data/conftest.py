"""Fixtures for the data-loader tests (helpers live in ``data_helpers``, a unique module name)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from data_helpers import EOS, FIXTURES


@pytest.fixture(scope="session")
def word_tokenizer_dir(tmp_path_factory) -> Path:
    """A word-level tokenizer (one token per whitespace word, ``<|endoftext|>`` special).

    Token counts in the tests are therefore word counts, which keeps expected rows derivable by
    hand; decoding joins words with single spaces.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    files = [p for p in FIXTURES.rglob("*") if "word_tokenizer" not in p.parts]  # not the shipped tokenizer
    corpus = [p.read_text(errors="ignore") for p in files if p.suffix in (".json", ".jsonl", ".csv", ".tsv")]
    corpus += [p.read_text(errors="ignore") for p in files if p.suffix == ".gz"]  # raw bytes; enough for counting
    for path in (p for p in files if p.suffix == ".parquet"):
        df = pd.read_parquet(path)
        corpus += [str(v) for col in df.columns for v in df[col] if isinstance(v, str)]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", EOS]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token=EOS, pad_token=EOS)
    out = tmp_path_factory.mktemp("word_tokenizer")
    fast.save_pretrained(out)
    return out
