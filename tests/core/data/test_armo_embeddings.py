"""[RF] ArmoRM stage-1 / stage-2 embeddings with a tiny llama3-style backbone (docs/sources.md §2.5).

The tokenizer is character level plus llama3's header and turn special tokens, ``\\n\\n`` and the
role words, with llama3's chat template, so every position in a rendered conversation can be
counted by hand. The model is a random ``LlamaForSequenceClassification`` (FsfairX's
architecture) that the builders load with ``AutoModel``. The shipped fixture used by the task
YAML's offline command was written by ``tiny_llama3_rm``:

    PYTHONPATH=.:tests/core/data .venv/bin/python -c \\
      "from test_armo_embeddings import tiny_llama3_rm; tiny_llama3_rm('data/fixtures/rlhflow/tiny-llama3-rm')"
"""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from data_helpers import FIXTURES

from rlhf_core.config import DatasetConfig
from rlhf_core.data.armo_embeddings import TOKEN_PATTERNS, last_occurrence, load_backbone, render, token_pattern
from rlhf_core.data.registry import get_builder

BOS, EOS, EOT, UNK = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "[UNK]"
SH, EH = "<|start_header_id|>", "<|end_header_id|>"
WORDS = ["\n\n", "assistant", "user", "system"]  # single tokens, as in llama3
PATTERN = [4, 2, 7, 3, 6]  # EOT, SH, "assistant", EH, "\n\n": llama3's pattern in this vocabulary
LLAMA3_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
SHIPPED = FIXTURES / "rlhflow" / "tiny-llama3-rm"


def tiny_llama3_rm(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny llama3-style tokenizer and a random Llama reward model (safetensors) to ``path``."""
    from tokenizers import AddedToken, Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForSequenceClassification, PreTrainedTokenizerFast

    specials = [BOS, EOS, SH, EH, EOT]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    vocab = {t: i for i, t in enumerate([*specials, UNK, *WORDS, *chars])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n\n|assistant|user|system|[\s\S]"), behavior="isolated")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 0)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK, chat_template=LLAMA3_TEMPLATE
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        num_labels=1,
    )
    path = Path(path)
    LlamaForSequenceClassification(config).save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return tiny_llama3_rm(tmp_path_factory.mktemp("tiny_llama3_rm"))


@pytest.fixture(scope="module")
def backbone(tiny_dir):
    return load_backbone({"path": str(tiny_dir)}, builder="test", device="cpu")


def conv(*turns: str) -> list[dict]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]


def reference_states(backbone, messages: list[dict]) -> np.ndarray:
    """Hidden states of one conversation run alone (no batching, no padding): ``(T, H)``."""
    model, tok = backbone
    with torch.inference_mode():
        ids = torch.as_tensor(render(tok, messages), dtype=torch.long)[None]  # (1, T)
        return model(input_ids=ids).last_hidden_state[0].numpy()


def run(builder: str, table: pd.DataFrame, tiny_dir: Path, **options):
    options = {"model": {"path": str(tiny_dir)}, "device": "cpu", **options}  # fp32, so states match to 1e-5
    spec = DatasetConfig(builder=builder, inputs=["x"], options=options)
    return get_builder(builder)({"x": table}, spec, None)


def pairs(*rows: tuple[list[dict], list[dict]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": f"p{i}", "split": "train", "origin": "fixture", "chosen": json.dumps(c), "rejected": json.dumps(r)}
            for i, (c, r) in enumerate(rows, start=1)
        ]
    )


# ----------------------------------------------------------------------------- pieces


def test_render_keeps_one_bos_and_the_llama3_layout(backbone):
    _, tok = backbone
    ids = render(tok, conv("hi", "ok"))
    assert tok.convert_ids_to_tokens(ids.tolist()) == [
        BOS,
        SH,
        "user",
        EH,
        "\n\n",
        "h",
        "i",
        EOT,
        SH,
        "assistant",
        EH,
        "\n\n",
        "o",
        "k",
        EOT,
    ]
    assert last_occurrence(ids, tuple(PATTERN)) == 7  # the EOT closing the user turn
    # without stripping, the template's BOS text and the tokenizer's BOS both stay
    assert render(tok, conv("hi", "ok"), strip_bos_text=False)[:2].tolist() == [0, 0]


def test_last_occurrence():
    assert last_occurrence([1, 2, 3, 1, 2, 3, 4], (1, 2)) == 3
    assert last_occurrence([1, 2, 3], (2, 3)) == 1
    assert last_occurrence([1, 2], (5,)) is None and last_occurrence([1], (1, 2)) is None
    assert last_occurrence([], (1,)) is None


def test_token_pattern_option():
    assert token_pattern("llama3", builder="b") == (128009, 128006, 78191, 128007, 271) == TOKEN_PATTERNS["llama3"]
    assert token_pattern("gemma2", builder="b") == (107, 108, 106, 2516, 108)
    assert token_pattern(PATTERN, builder="b") == tuple(PATTERN)
    for bad in ("mistral", [], [1, "2"], [True]):
        with pytest.raises(ValueError, match="token_pattern"):
            token_pattern(bad, builder="b")


def test_model_option_must_be_a_model_source():
    with pytest.raises(ValueError, match="exactly one of hub_id, path, init"):
        load_backbone({}, builder="b")
    with pytest.raises(ValueError, match="needs a pinned revision"):
        load_backbone({"hub_id": "sfairXC/FsfairX-LLaMA3-RM-v0.1"}, builder="b")


# ----------------------------------------------------------------------------- stage 2


def test_pair_embeddings_positions_states_and_rules(tiny_dir, backbone):
    single = (conv("hi", "ok"), conv("hi", "no way"))  # 15 and 19 tokens; gating EOT at 7
    multi = (conv("a", "b", "cd", "e"), conv("a", "b", "cd", "fg"))  # 26 and 27 tokens; EOTs at 6 and 19
    too_long = (conv("hi", "x" * 20), conv("hi", "y"))  # 33 tokens > 27
    no_user_turn = ([{"role": "assistant", "content": "hi"}], conv("hi", "y"))
    res = run(
        "armorm_pair_embeddings",
        pairs(single, multi, too_long, no_user_turn),
        tiny_dir,
        token_pattern=PATTERN,
        max_length=27,
        batch_size=2,
    )

    assert res.counts() == {"input_rows": 4, "kept_rows": 2, "quarantined_rows": 1, "dropped_longer_than_max_length": 1}
    assert res.quarantined[["row", "field", "reason"]].values.tolist() == [
        [4, "chosen", "token pattern [4, 2, 7, 3, 6] not found"]
    ]
    assert list(res.kept.columns) == ["id", "split", "origin", "embedding", "prompt_embedding"]
    assert res.kept["id"].tolist() == ["p1", "p2"]
    # exact positions: (gating start, final token) of chosen and rejected; a batch pads 27 vs 26, 19 vs 15
    picked = {"p1": [(7, 14), (7, 18)], "p2": [(19, 25), (19, 26)]}
    for row, pair in zip(res.kept.itertuples(), (single, multi)):
        for side, (messages, (start, last)) in enumerate(zip(pair, picked[row.id])):
            ref = reference_states(backbone, messages)
            assert len(ref) == last + 1
            np.testing.assert_allclose(row.embedding[side], ref[last], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(row.prompt_embedding[side], ref[start], rtol=1e-4, atol=1e-5)
            assert row.embedding[side].dtype == np.float32
    # the multi-turn gating position is the last user turn's EOT, not the first one at 6
    assert not np.allclose(res.kept["prompt_embedding"][1][0], reference_states(backbone, multi[0])[6])


def test_prompt_rows_become_single_turn_conversations(tiny_dir, backbone):
    """RewardBench-style rows: the prompt is the user turn, each response the assistant reply."""
    table = pd.DataFrame(
        [
            {
                "id": "7",
                "split": "test",
                "prompt": "hi",
                "chosen": "ok",
                "rejected": "no",
                "subset": "hep-go",
                "section": "Reasoning",
            }
        ]
    )
    res = run("armorm_pair_embeddings", table, tiny_dir, token_pattern=PATTERN)
    assert list(res.kept.columns) == ["id", "split", "subset", "section", "embedding", "prompt_embedding"]
    row = res.kept.iloc[0]
    for side, reply in enumerate(("ok", "no")):
        ref = reference_states(backbone, conv("hi", reply))
        np.testing.assert_allclose(row["embedding"][side], ref[14], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row["prompt_embedding"][side], ref[7], rtol=1e-4, atol=1e-5)


def test_default_pattern_is_llama3(tiny_dir):
    # the tiny vocabulary has no token 128009, so the llama3 default finds nothing and quarantines
    res = run("armorm_pair_embeddings", pairs((conv("hi", "ok"), conv("hi", "no"))), tiny_dir)
    assert res.quarantined["reason"].tolist() == [f"token pattern {list(TOKEN_PATTERNS['llama3'])} not found"]


# ----------------------------------------------------------------------------- stage 1


def test_objective_embeddings_final_token_labels_and_seed_order(tiny_dir, backbone):
    convs = [conv("a", "b"), conv("hi", "ok", "more", "sure"), conv("q", "long answer here")]
    table = pd.DataFrame(
        {
            "id": ["1", "2", "3"],
            "split": "train",
            "messages": [json.dumps(c) for c in convs],
            "helpsteer-helpfulness": [3.0, math.nan, 1.0],
        }
    )
    res = run("armorm_objective_embeddings", table, tiny_dir, batch_size=2)
    order = np.random.default_rng(0).permutation(3)  # the seed's ds.shuffle(seed=0)
    assert res.kept["id"].tolist() == [str(i + 1) for i in order]
    assert list(res.kept.columns) == ["id", "split", "embedding", "helpsteer-helpfulness"]
    for row in res.kept.itertuples(index=False):
        ref = reference_states(backbone, convs[int(row.id) - 1])
        np.testing.assert_allclose(row.embedding, ref[-1], rtol=1e-4, atol=1e-5)
    labels = res.kept.set_index("id")["helpsteer-helpfulness"]
    assert labels["1"] == 3.0 and math.isnan(labels["2"])


# ----------------------------------------------------------------------------- shipped fixture


def test_shipped_fixture_is_the_tiny_builder_output(tmp_path):
    fresh = tiny_llama3_rm(tmp_path)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        assert (SHIPPED / name).read_text() == (fresh / name).read_text(), name

    def read(d, name):
        return json.loads((d / name).read_text())

    assert read(SHIPPED, "tokenizer.json")["model"]["vocab"] == read(fresh, "tokenizer.json")["model"]["vocab"]
    version = "transformers_version"  # the only field that may differ between installs
    assert {**read(SHIPPED, "config.json"), version: ""} == {**read(fresh, "config.json"), version: ""}
