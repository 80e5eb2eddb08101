"""The tiny random models of the seeds' architectures that ``--profile tiny`` runs on, written under
``data/fixtures/tiny_models`` (committed; a few hundred KB). Rebuild them with

    PYTHONPATH=. .venv/bin/python -m tests.tiny_models

Each is a random network of the seed's real architecture with a byte-level BPE (``tests.conftest``) or a
tokenizer trained on a toy corpus (T5): nothing is downloaded, and the pipeline loads each through the same
``from_pretrained`` path as the seed's checkpoint. Scores and generations are meaningless; the point is that
every stage of a seed workflow runs, offline, in minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LongformerConfig,
    LongformerModel,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from tests.conftest import (
    SourceOffensiveModel,
    _gpt2_config,
    _roberta_config,
    comet_critic_head,
    gpt2_tokenizer,
    roberta_tokenizer,
)
from tests.core.tiny_rl import tiny_t5

ROOT = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "tiny_models"
SMALL = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
LONG = 1024  # the tiny Longformer's positions: [FG]'s R2 inputs carry the question, passages and answer


def _save(model, tok, path: Path) -> str:
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def gpt2(path: Path) -> str:
    """A GPT-2 causal LM ([WA], [FG] detox policies and detox's reference LM)."""
    tok = gpt2_tokenizer()
    eos = tok.eos_token_id
    torch.manual_seed(0)
    return _save(
        GPT2LMHeadModel(
            GPT2Config(
                vocab_size=len(tok),
                n_embd=16,
                n_layer=1,
                n_head=2,
                n_positions=1024,
                bos_token_id=eos,
                eos_token_id=eos,
            )
        ),
        tok,
        path,
    )


def t5(path: Path, seed: int) -> str:
    """A T5 encoder-decoder ([FG] qa-feedback's policy and its separate critic)."""
    model, tok = tiny_t5(seed=seed)
    return _save(model, tok, path)


def longformer(path: Path) -> str:
    """A Longformer body ([FG] R1/R2/R3 and the holistic RM start from it; the trainer adds their heads)."""
    tok = roberta_tokenizer()
    torch.manual_seed(2)
    model = LongformerModel(
        LongformerConfig(
            vocab_size=len(tok),
            **SMALL,
            attention_window=8,
            max_position_embeddings=LONG + 2,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            sep_token_id=2,
            type_vocab_size=1,
        )
    )
    return _save(model, tok, path)


def roberta_classifier(path: Path) -> str:
    """A 2-label RoBERTa classifier (detox's stand-in for the Perspective web API)."""
    tok = roberta_tokenizer()
    torch.manual_seed(5)
    cfg = RobertaConfig(
        vocab_size=len(tok), **SMALL, max_position_embeddings=514, pad_token_id=1, type_vocab_size=1, num_labels=2
    )
    return _save(RobertaForSequenceClassification(cfg), tok, path)


def dialogrpt(path: Path) -> str:
    """A GPT-2 one-logit classifier ([LoL] DialogRPT depth and updown)."""
    from transformers import GPT2ForSequenceClassification

    tok = gpt2_tokenizer()
    torch.manual_seed(6)
    return _save(GPT2ForSequenceClassification(_gpt2_config(tok, num_labels=1)), tok, path)


def toxichat(path: Path) -> str:
    """ToxiChat's offensive classifier layout ([LoL] Reddit ``safe``)."""
    tok = gpt2_tokenizer()
    torch.manual_seed(7)
    return _save(SourceOffensiveModel(_gpt2_config(tok)), tok, path)


def comet_critic(path: Path) -> str:
    """A RoBERTa body and the COMET critic's head file ([LoL] COMET ``p_valid_model``)."""
    from transformers import RobertaModel

    tok = roberta_tokenizer()
    torch.manual_seed(8)
    _save(RobertaModel(_roberta_config(tok)), tok, path)
    comet_critic_head(path)
    return str(path)


def llama(path: Path) -> str:
    """A Llama causal LM ([CRS] llama2-oasst policy, [LoL] HHA llama-7b policy)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = gpt2_tokenizer()
    eos = tok.eos_token_id
    cfg = LlamaConfig(
        vocab_size=len(tok),
        **SMALL,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(1)
    return _save(LlamaForCausalLM(cfg), tok, path)


def distilbert(path: Path) -> str:
    """A DistilBERT one-logit classifier on a character WordPiece vocabulary ([WA]'s Bradley-Terry RM)."""
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertTokenizer,
    )

    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:;()\""))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = DistilBertTokenizer(vocab_file=str(path / "vocab.txt"))
    cfg = DistilBertConfig(
        vocab_size=len(tok), dim=16, n_layers=1, n_heads=2, hidden_dim=32, num_labels=1, max_position_embeddings=512
    )
    torch.manual_seed(3)
    return _save(DistilBertForSequenceClassification(cfg), tok, path)


def neox_classifier(path: Path) -> str:
    """A GPT-NeoX one-logit classifier ([LoL] HHA's OASST pythia RM)."""
    from transformers import GPTNeoXConfig, GPTNeoXForSequenceClassification

    tok = gpt2_tokenizer()
    cfg = GPTNeoXConfig(
        vocab_size=len(tok), **SMALL, max_position_embeddings=1024, num_labels=1, pad_token_id=tok.eos_token_id
    )
    torch.manual_seed(4)
    return _save(GPTNeoXForSequenceClassification(cfg), tok, path)


def write_all(root: Path = ROOT) -> None:
    gpt2(root / "gpt2")
    t5(root / "t5", 0)
    t5(root / "t5_value", 1)
    longformer(root / "longformer")
    roberta_classifier(root / "roberta_classifier")
    dialogrpt(root / "dialogrpt")
    toxichat(root / "toxichat")
    comet_critic(root / "comet_critic")
    llama(root / "llama")
    distilbert(root / "distilbert")
    neox_classifier(root / "neox_classifier")


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
