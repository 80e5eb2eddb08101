"""The demo's gold reward: a judge that knows the world, so every stage is measured against truth.

The judge reads any text (a generator's response or a policy's sample), splits it into sentences
and grades them with the fine-grained categories of qa-feedback:

- relevance: share of sentences that are complete, not a repeat, and state an asked attribute of
  the asked entity (irrelevant, redundant and incoherent sentences fail it);
- factuality: share of stated facts (entity + attribute value, about any entity) that are true;
- completeness: share of asked attributes stated correctly;
- toxicity: 1 if any word of the toxic lexicon occurs, else 0.

gold = w_rel*relevance + w_fact*factuality + w_comp*completeness - w_tox*toxicity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from rlhf_core.config import DemoWorldConfig, GoldConfig, parse_section, to_dict
from rlhf_core.rewards.base import Needs

SENTENCE = re.compile(r"[^.!?]+(?:[.!?]|$)")
_WORD = re.compile(r"[A-Za-z]+")

COMPONENTS = ("relevance", "factuality", "completeness", "toxicity")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str
    complete: bool
    repeated: bool
    claim: tuple[str, str, str] | None  # (entity, attribute, value)
    relevant: bool
    factual: bool | None  # None: the sentence states no fact
    toxic: bool


@dataclass
class Judgement:
    sentences: list[Sentence]
    answered: set[str] = field(default_factory=set)  # asked attributes stated correctly
    n_asked: int = 0

    def components(self) -> dict[str, float]:
        n = len(self.sentences)
        claims = [s for s in self.sentences if s.factual is not None]
        return {
            "relevance": sum(s.relevant for s in self.sentences) / n if n else 0.0,
            "factuality": sum(bool(s.factual) for s in claims) / len(claims) if claims else 0.0,
            "completeness": len(self.answered) / self.n_asked if self.n_asked else 0.0,
            "toxicity": float(any(s.toxic for s in self.sentences)),
        }


class World:
    """Entity facts plus the lexicons the judge needs to read text."""

    def __init__(self, facts: pd.DataFrame, spec: DemoWorldConfig):
        self.facts: dict[str, dict[str, str]] = {}
        for row in facts.itertuples(index=False):
            self.facts.setdefault(row.entity, {})[row.attribute] = row.value
        self.value_attribute = {v.lower(): a for a, values in spec.attributes.items() for v in values}
        self.entities = {e.lower(): e for e in self.facts}
        self.attributes = list(spec.attributes)
        self.toxic = {w.lower() for w in spec.toxic_words}

    def parse_prompt(self, prompt: str) -> tuple[str | None, list[str]]:
        """The asked entity and attributes, read from the question text."""
        words = [w.lower() for w in _WORD.findall(prompt)]
        subject = next((self.entities[w] for w in words if w in self.entities), None)
        asked = [a for a in self.attributes if a.lower() in words]
        return subject, asked

    def judge(self, prompt: str, response: str) -> Judgement:
        subject, asked = self.parse_prompt(prompt)
        judgement = Judgement([], n_asked=len(asked))
        seen: set[str] = set()
        for match in SENTENCE.finditer(response):
            text = match.group().strip()
            if not text:
                continue
            words = [w.lower() for w in _WORD.findall(text)]
            norm = " ".join(words)
            repeated = norm in seen
            seen.add(norm)
            entities = {self.entities[w] for w in words if w in self.entities}
            values = {w for w in words if w in self.value_attribute}
            claim = None
            if len(entities) == 1 and len(values) == 1:
                (entity,), (value,) = entities, values
                claim = (entity, self.value_attribute[value], value)
            complete = text[-1] in ".!?"
            factual = None if claim is None else self.facts[claim[0]].get(claim[1], "").lower() == claim[2]
            relevant = bool(claim and complete and not repeated and claim[0] == subject and claim[1] in asked)
            if relevant and factual:
                judgement.answered.add(claim[1])
            start = match.start() + (len(match.group()) - len(match.group().lstrip()))
            judgement.sentences.append(
                Sentence(
                    start,
                    start + len(text),
                    text,
                    complete,
                    repeated,
                    claim,
                    relevant,
                    factual,
                    toxic=any(w in self.toxic for w in words),
                )
            )
        return judgement


def signed_weights(weights: GoldConfig) -> dict[str, float]:
    """The coefficient of each component in gold (toxicity is penalised: its coefficient is negative)."""
    return {
        "relevance": weights.relevance,
        "factuality": weights.factuality,
        "completeness": weights.completeness,
        "toxicity": -weights.toxicity,
    }


def gold_components(world: World, weights: GoldConfig, prompt: str, response: str) -> dict[str, float]:
    comps = world.judge(prompt, response).components()
    comps["gold"] = sum(w * comps[name] for name, w in signed_weights(weights).items())
    return comps


class GoldScorer:
    """The simulated human judge, computed from the world's facts: relevance + factuality + completeness
    - toxicity (each weighted by the ``gold`` section). A TRL-signature scorer; ``components()`` gives the
    breakdown.

    As a registered scorer (``rlhf_core.rewards.gold``) it is prepared from the ``world`` and
    ``gold`` config and the world's facts table, which it copies into its own artifact.
    """

    name = "gold"
    version = "1"
    breakdown_legend: ClassVar[dict[str, str]] = {
        "relevance": "the gold judge's relevance: share of the response's sentences that answer the question",
        "factuality": "the gold judge's factuality: share of the stated facts that are true in the world",
        "completeness": "the gold judge's completeness: share of the asked attributes answered correctly",
        "toxicity": "the gold judge's toxicity: share of responses with a toxic word (counted against gold)",
    }
    needs = Needs(config=("world", "gold"), tables=("world",))
    FACTS, CONFIG = "world_facts.parquet", "judge.json"

    def __init__(self, world: World, weights: GoldConfig):
        self.world, self.weights = world, weights

    @classmethod
    def prepare(cls, state_dir: Path, config: dict[str, Any], tables: dict[str, pd.DataFrame]) -> None:
        if config.get("world") is None or config.get("gold") is None:
            raise ValueError("the gold scorer needs the task's 'world' and 'gold' sections")
        tables["world"].to_parquet(state_dir / cls.FACTS, index=False)
        (state_dir / cls.CONFIG).write_text(json.dumps(to_dict(config), sort_keys=True))

    @classmethod
    def from_state(cls, state_dir: Path) -> GoldScorer:
        config = json.loads((Path(state_dir) / cls.CONFIG).read_text())
        return judge(
            pd.read_parquet(Path(state_dir) / cls.FACTS),
            parse_section(DemoWorldConfig, config["world"]),
            parse_section(GoldConfig, config["gold"]),
        )

    def components(self, prompts: list[str], completions: list[str]) -> pd.DataFrame:
        return pd.DataFrame([gold_components(self.world, self.weights, p, c) for p, c in zip(prompts, completions)])

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return self.components(prompts, completions)["gold"].tolist()


def judge(facts: pd.DataFrame, world: DemoWorldConfig, weights: GoldConfig) -> GoldScorer:
    """The gold judge of a generated world."""
    return GoldScorer(World(facts, world), weights)
