"""COMET critic (``p_valid_model``, docs/sources.md §3.2): P(valid) of a generated ATOMIC tail.

A ``RobertaModel`` converted from the Keras critic of Symbolic Knowledge Distillation, read at its
``pooler_output``, followed by the head in ``custom_roberta_classification_head.pt`` beside the
weights: Linear(hidden -> 512) -> GELU -> Linear(512 -> 1) -> sigmoid.

    critic = build_scorer("comet_critic", model="/models/comet-critic")
    critic(["<head> PersonX goes home </head> <relation> xWant </relation> [GEN] "], ["to sleep"])
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from rlhf_core.rewards.base import register
from rlhf_core.rewards.model_loading import load_extra_weights, load_model_and_tokenizer
from rlhf_core.rewards.model_scorer import BatchedModelScorer

HEAD_FILE = "custom_roberta_classification_head.pt"

RELATION_PHRASES = {
    "HinderedBy": "can be hindered by",
    "xNeed": "but before, PersonX needed",
    "xWant": "as a result, PersonX wants",
    "xIntent": "because PersonX wanted",
    "xReact": "as a result, PersonX feels",
    "xAttr": "so, PersonX is seen as",
    "xEffect": "as a result, PersonX",
}

_PROMPT = re.compile(r"<head>(.*?)</head>\s*<relation>(.*?)</relation>", re.DOTALL)


class CriticHead(nn.Module):
    """The critic's classification head (no dropout); parameter names match the converted file."""

    def __init__(self, hidden_size: int, middle_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, middle_size)
        self.out_proj = nn.Linear(middle_size, 1)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out_proj(nn.functional.gelu(self.dense(pooled))).float()).squeeze(-1)


def parse_prompt(prompt: str) -> tuple[str, str]:
    """``(head, relation)`` from ``"<head> h </head> <relation> r </relation> [GEN] "``."""
    match = _PROMPT.search(prompt)
    if match is None:
        raise ValueError("prompt is not '<head> ... </head> <relation> ... </relation> ...'")
    return match.group(1).strip(), match.group(2).strip()


@lru_cache(maxsize=1)
def _first_name_tables() -> dict[str, tuple[list[str], list[float]]]:
    import names  # the `names` package: US census first-name frequency tables

    tables = {}
    for gender in ("male", "female"):
        rows = [line.split() for line in open(names.FILES[f"first:{gender}"])]
        tables[gender] = ([r[0].capitalize() for r in rows], [float(r[2]) for r in rows])
    return tables


def sample_first_name(rng: random.Random) -> str:
    """``names.get_first_name()`` drawn from ``rng`` instead of the global random state."""
    gender = rng.choice(("male", "female"))
    selected = rng.random() * 90
    first, cumulative = _first_name_tables()[gender]
    return next((name for name, c in zip(first, cumulative) if c > selected), "")


def critic_pair(head: str, relation: str, tail: str, seed: int) -> tuple[str, str]:
    """The critic's text pair ``(head, f"{relation_phrase} {tail}")`` with PersonX/PersonY named.

    As in the source, the joined string gets two distinct random first names for PersonX and
    PersonY (the relation phrase's PersonX included) and then ``ftfy.fix_text``. The names are drawn
    from an RNG seeded by ``seed`` and the row's content, so a row always gets the same names
    whatever batch it is scored in (the source used the global RNG: different names every call).
    """
    import ftfy

    digest = hashlib.sha256(f"{seed}\x00{head}\x00{relation}\x00{tail}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    p1 = sample_first_name(rng)
    p2 = p1
    while p2 == p1:
        p2 = sample_first_name(rng)
    text = f"{head}**SEP**{RELATION_PHRASES[relation]} {tail}"
    text = ftfy.fix_text(text.replace("PersonX", p1).replace("PersonY", p2))
    first, second = text.split("**SEP**", 1)
    return first, second


@register("comet_critic")
class CometCriticScorer(BatchedModelScorer):
    """P(valid) of (head, relation, tail) where the prompt holds head and relation, the completion is the tail.

    Input: the pair ``<s> head </s></s> relation_phrase tail </s>`` built by ``critic_pair`` (the
    source did not truncate; here rows over 512 tokens are truncated longest-first and flagged).
    Value: sigmoid(head(pooler_output)).
    """

    name = "comet_critic"
    default_model = ""  # no hub copy: the converted Keras critic lives in a local directory

    def __init__(self, model: str, seed: int = 0, **kwargs: Any):
        self.seed = seed
        super().__init__(model=model, **kwargs)
        self.version += f"+names_seed={seed}"

    def load(self, source: str, revision: str | None, device: str | None) -> tuple[Any, Any, torch.device]:
        from transformers import RobertaModel

        model, tokenizer, dev = load_model_and_tokenizer(RobertaModel, source, revision, device)
        state = load_extra_weights(source, revision, HEAD_FILE)
        middle, hidden = state["dense.weight"].shape
        self.head = CriticHead(hidden, middle)
        self.head.load_state_dict(state)
        self.head.to(dev, model.dtype).eval()
        return model, tokenizer, dev

    def invalid_reason(self, prompt: str, completion: str) -> str | None:
        try:
            _, relation = parse_prompt(prompt)
        except ValueError as err:
            return str(err)
        return None if relation in RELATION_PHRASES else f"unknown relation {relation!r}"

    def model_inputs(self, prompts: Sequence[str], responses: Sequence[str]) -> tuple[list[str], list[str]]:
        pairs = [critic_pair(*parse_prompt(p), r, self.seed) for p, r in zip(prompts, responses)]
        return [a for a, _ in pairs], [b for _, b in pairs]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.model(**batch).pooler_output)
