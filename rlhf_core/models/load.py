"""Model and tokenizer loading: pinned hub ids, local directories, or tiny models built from config.

One path serves every source, so the demo's tiny models and a real task's hub models go
through the same code:

    tok = load_tokenizer(ModelSource(hub_id="gpt2", revision="607a30d"))
    model = load_causal_lm(ModelSource(path="data/artifacts/demo/sft_model/<key>"))

Weights are loaded from safetensors (``use_safetensors=True``); ``trust_remote_code`` stays off
unless the config turns it on. Saved models carry ``meta.json`` beside the weights.

An adapter-only artifact (LoRA with ``merge: false``) holds the PEFT adapter and ``adapter_base.json``,
the source of its base; every model loader here loads that base (recursively: the base may be an
adapter artifact itself), applies the adapter and merges it, so callers get a plain model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rlhf_core.config import ModelSource, TinyGPTConfig, parse_section, to_dict, warn_if_unpinned
from rlhf_core.errors import OfflineHubError
from rlhf_core.store_verify import is_artifact, verify

EOS = "<|endoftext|>"  # end of text / turn separator of GPT-2-family models, and of our tokenizer
PAD = "<|pad|>"
NO_POSITION_LIMIT = 1 << 20
ADAPTER_BASE = "adapter_base.json"  # in an adapter-only artifact: where its base comes from


def hub_kwargs(source: ModelSource) -> tuple[str, dict[str, Any]]:
    """``(name_or_path, from_pretrained kwargs)`` for a hub or local source."""
    if source.path is not None:
        return str(source.path), {"trust_remote_code": source.trust_remote_code}
    if source.hub_id is None:
        raise ValueError("a tiny-init source has no weights to load; build it with build_causal_lm")
    return source.hub_id, {"revision": source.revision, "trust_remote_code": source.trust_remote_code}


def from_pretrained_source(cls: Any, source: ModelSource, **extra: Any) -> Any:
    """``cls.from_pretrained`` for any source; a hub source fails fast when the hub is offline."""
    name, kwargs = hub_kwargs(source)
    if source.path is not None and is_artifact(source.path):
        verify(Path(source.path))  # a model from the artifact store is checked whole before it loads
    if source.hub_id is not None and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise OfflineHubError(f"{name}@{source.revision}: HF_HUB_OFFLINE=1; point the config at a local path")
    if source.hub_id is not None:
        warn_if_unpinned(source.hub_id, source.revision)
    return cls.from_pretrained(name, **kwargs, **extra)


def from_pretrained_model(cls: Any, source: ModelSource, **extra: Any) -> Any:
    """``from_pretrained_source`` for a model class; an adapter-only artifact loads as base + adapter, merged."""
    folder = Path(source.path) if source.path is not None else None
    if folder is None or not (folder / ADAPTER_BASE).exists():
        return from_pretrained_source(cls, source, **extra)
    from peft import PeftConfig, PeftModel

    base = json.loads((folder / ADAPTER_BASE).read_text())
    model = from_pretrained_model(cls, parse_section(ModelSource, base["source"]), **{**base["config"], **extra})
    adapter = PeftConfig.from_pretrained(str(folder))
    # No task wrapper: the class asked for may put another head on the same body (a reward model
    # whose base is an SFT adapter); the adapter's own saved heads (modules_to_save) still load.
    adapter.task_type = None
    return PeftModel.from_pretrained(model, str(folder), config=adapter).merge_and_unload()


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    tok = from_pretrained_source(AutoTokenizer, source)
    if tok.pad_token is None:  # GPT-2-style hub tokenizers ship without one
        tok.pad_token = tok.eos_token
    return tok


def quantized_load(quantization: str | None) -> dict:
    """``from_pretrained`` arguments of a QLoRA base ("4bit" or "8bit", CUDA only); none without."""
    from rlhf_core.train.lora import quantization_config

    if not quantization:
        return {}
    # A quantized base is placed at load time, on this process's GPU (LOCAL_RANK under a launcher).
    return {
        "quantization_config": quantization_config(quantization),
        "device_map": {"": int(os.environ.get("LOCAL_RANK", 0))},
    }


def load_causal_lm(source: ModelSource, quantization: str | None = None):
    """A causal LM; ``quantization`` ("4bit" or "8bit", CUDA only) loads a QLoRA base."""
    from transformers import AutoModelForCausalLM

    return from_pretrained_model(AutoModelForCausalLM, source, use_safetensors=True, **quantized_load(quantization))


def load_policy(source: ModelSource, quantization: str | None = None):
    """A policy LM: encoder-decoder ([FG]'s T5) or causal, as its checkpoint's config says."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    if from_pretrained_source(AutoConfig, source).is_encoder_decoder:
        return from_pretrained_source(AutoModelForSeq2SeqLM, source, use_safetensors=True)
    return load_causal_lm(source, quantization)


def load_sequence_classifier(source: ModelSource, num_labels: int = 1):
    from transformers import AutoModelForSequenceClassification

    return from_pretrained_model(
        AutoModelForSequenceClassification, source, num_labels=num_labels, use_safetensors=True
    )


def train_tokenizer(corpus: list[str], vocab_size: int, min_frequency: int):
    """A byte-level BPE trained on the task corpus, wrapped as a transformers tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS, PAD], show_progress=False
    )
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, pad_token=PAD, unk_token=EOS)


def build_causal_lm(init: TinyGPTConfig, tokenizer, seed: int):
    """A randomly initialised GPT-2-style LM with the sizes from the task config."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=init.n_positions,
        n_embd=init.n_embd,
        n_layer=init.n_layer,
        n_head=init.n_head,
        resid_pdrop=init.dropout,
        embd_pdrop=init.dropout,
        attn_pdrop=init.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def save_model(model, tokenizer, out_dir: Path, base: ModelSource | None = None) -> dict[str, Any]:
    """``save_pretrained`` (safetensors) of model and tokenizer into ``out_dir``; metadata to report.

    A PeftModel (LoRA kept unmerged) saves only its adapter and ``adapter_base.json``: ``base``, the
    source its base model was loaded from, and the config values the base needs to load as the same
    class (a reward model's one label, its pad id). A base built in code has no source to name.
    """
    adapter = hasattr(model, "peft_config")
    if adapter and (base is None or base.init is not None):
        raise ValueError(
            "lora.merge: false saves only the adapter, so the base must load from a hub id or "
            "path; a model built from init has none (set lora.merge: true)"
        )
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    if not adapter:
        return {}
    keep = {
        k: getattr(model.config, k)
        for k in ("num_labels", "pad_token_id")
        if type(model.get_base_model()).__name__.endswith("ForSequenceClassification")
    }
    (Path(out_dir) / ADAPTER_BASE).write_text(json.dumps({"source": to_dict(base), "config": keep}, indent=2))
    return {"adapter_base": base.path or f"{base.hub_id}@{base.revision}"}


def max_positions(config: Any) -> int:
    """Longest input the model's position table allows, whatever the architecture calls it
    (GPT-2 ``n_positions``, most ``max_position_embeddings``; RoBERTa offsets positions by
    ``pad_token_id + 1``); a model without a position table (rotary, ALiBi) reports none: a large cap."""
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        return int(config.max_position_embeddings) - int(config.pad_token_id) - 1
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length", "seq_length"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return NO_POSITION_LIMIT
