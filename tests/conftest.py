"""Shared test set-up: no hub access, and tiny random models of each real reward architecture.

Nothing is downloaded: the tokenizers are byte-level BPEs built from the 256-symbol byte alphabet
plus a few merges, the models are random, and each is written with ``save_pretrained`` so the
scorers load it through the same ``from_pretrained`` path as a hub id.
"""

from __future__ import annotations

import os

# Nothing here may reach a model hub: a test that tried would fail, not download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path

import pytest
import torch
from tokenizers.pre_tokenizers import ByteLevel
from torch import nn
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    GPT2Tokenizer,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaModel,
    RobertaTokenizer,
)

from rlhf_core.rewards.comet_critic import HEAD_FILE

pytest_plugins = ("tests.s3_server",)  # s3_env, bucket: a local S3-protocol server for the object-store tests

MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("e", "r")]
MAX_POSITIONS = 128  # so truncation is easy to reach in tests


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: without it they are skipped, not failed."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _bpe(specials: list[str], tail_specials: list[str] = ()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    symbols = specials + sorted(ByteLevel.alphabet()) + ["".join(m) for m in MERGES] + list(tail_specials)
    return {s: i for i, s in enumerate(symbols)}, list(MERGES)


def roberta_tokenizer() -> RobertaTokenizer:
    vocab, merges = _bpe(["<s>", "<pad>", "</s>", "<unk>"], ["<mask>"])  # RoBERTa's special ids 0-3
    return RobertaTokenizer(vocab=vocab, merges=merges)


def gpt2_tokenizer() -> GPT2Tokenizer:
    vocab, merges = _bpe([], ["<|endoftext|>"])
    return GPT2Tokenizer(vocab=vocab, merges=merges)


def _roberta_config(tok: RobertaTokenizer, **kw) -> RobertaConfig:
    return RobertaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=MAX_POSITIONS + 2,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.1,
        **kw,
    )


def _gpt2_config(tok: GPT2Tokenizer, **kw) -> GPT2Config:
    eos = tok.eos_token_id
    return GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=MAX_POSITIONS,
        bos_token_id=eos,
        eos_token_id=eos,
        initializer_range=0.1,
        **kw,
    )


class SourceOffensiveModel(GPT2LMHeadModel):
    """ToxiChat's ``GPT2ForOC_S_offensive`` parameter layout, to check its checkpoints load."""

    def __init__(self, config):
        super().__init__(config)
        self.dropout = nn.Dropout(config.embd_pdrop)
        self.off_classifier = nn.Linear(config.hidden_size, 2)


def _save(model, tok, path: Path) -> str:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def roberta_classifier_dir(tmp_path_factory) -> str:
    torch.manual_seed(0)
    tok = roberta_tokenizer()
    model = RobertaForSequenceClassification(_roberta_config(tok, num_labels=2))
    return _save(model, tok, tmp_path_factory.mktemp("roberta_cls"))


@pytest.fixture(scope="session")
def comet_critic_dir(tmp_path_factory) -> str:
    torch.manual_seed(1)
    tok = roberta_tokenizer()
    path = tmp_path_factory.mktemp("comet_critic")
    _save(RobertaModel(_roberta_config(tok)), tok, path)
    comet_critic_head(path)
    return str(path)


def comet_critic_head(path: Path) -> None:
    """The COMET critic's separate head file beside a RoBERTa body of hidden size 32."""
    head = nn.ModuleDict({"dense": nn.Linear(32, 512), "out_proj": nn.Linear(512, 1)})
    torch.save(head.state_dict(), path / HEAD_FILE)


@pytest.fixture(scope="session")
def dialogrpt_dir(tmp_path_factory) -> str:
    torch.manual_seed(2)
    tok = gpt2_tokenizer()
    model = GPT2ForSequenceClassification(_gpt2_config(tok, num_labels=1))
    return _save(model, tok, tmp_path_factory.mktemp("dialogrpt"))


@pytest.fixture(scope="session")
def toxichat_dir(tmp_path_factory) -> str:
    torch.manual_seed(3)
    tok = gpt2_tokenizer()
    model = SourceOffensiveModel(_gpt2_config(tok))
    return _save(model, tok, tmp_path_factory.mktemp("toxichat"))
