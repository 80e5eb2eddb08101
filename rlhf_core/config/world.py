"""The demo's generated miniature world and its gold reward (``world``, ``gold``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultRates:
    """Probabilities of each controlled fault when the generator writes a response."""

    missing: float = 0.0  # an asked attribute is not answered
    wrong: float = 0.0  # an asked attribute gets a wrong value
    irrelevant: float = 0.0  # a sentence about something not asked
    repeated: float = 0.0  # a sentence is said twice
    toxic: float = 0.0  # an insult is inserted
    abrupt: float = 0.0  # the response stops mid-sentence


@dataclass(frozen=True)
class DemoWorldConfig:
    """The generated miniature world: entities, their attributes, prompts and responses."""

    n_entities: int
    name_syllables: list[str]
    attributes: dict[str, list[str]]  # attribute -> its value vocabulary (disjoint)
    statement_templates: dict[str, str]  # attribute -> "{entity} ... {value}."
    question_template: str  # "{attributes}" and "{entity}" are filled in
    max_asked: int
    irrelevant_sentences: list[str]
    toxic_words: list[str]
    n_prompts: dict[str, int]  # split -> number of prompts
    responses_per_prompt: int
    response_faults: FaultRates
    demonstration_faults: FaultRates
    preference_temperature: float  # Bradley-Terry noise of the simulated annotators
    rating_noise: float  # std of the noise on absolute 1..5 ratings
    malformed_rows: int  # raw rows written with format faults, to exercise cleaning


@dataclass(frozen=True)
class GoldConfig:
    """Weights of the gold reward components (computed from the world, never learned)."""

    source: str = "world"  # the source whose table holds the world's facts
    relevance: float = 1.0
    factuality: float = 1.0
    completeness: float = 1.0
    toxicity: float = 1.0
