"""Deterministic generator of the demo's miniature world and its raw human-feedback file.

Everything comes from ``DemoWorldConfig`` and the task seed: entity names, their facts, the
questions, responses with controlled faults, and simulated annotators (Bradley-Terry noisy
preferences over the 6 response pairs, noisy 1..5 ratings, and error spans on response 1 in
the qa-feedback format). A few raw lines are deliberately malformed so cleaning has work to do.
"""

from __future__ import annotations

import json
import math
import random
from itertools import combinations

import pandas as pd

from rlhf_core.config import DemoWorldConfig, GoldConfig, TaskConfig
from rlhf_core.demo.gold import World, gold_components

PAIRS = list(combinations(range(4), 2))  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3), as in qa-feedback


def make_facts(spec: DemoWorldConfig, seed: int) -> pd.DataFrame:
    """One row per (entity, attribute, value); names are unique syllable pairs."""
    rng = random.Random(seed)
    names: list[str] = []
    candidates = [a + b for a in spec.name_syllables for b in spec.name_syllables if a != b]
    rng.shuffle(candidates)
    if len(candidates) < spec.n_entities:
        raise ValueError(f"world.name_syllables give {len(candidates)} names, need {spec.n_entities}")
    names = [c.capitalize() for c in candidates[: spec.n_entities]]
    rows = [
        {"entity": name, "attribute": attr, "value": rng.choice(values)}
        for name in names
        for attr, values in spec.attributes.items()
    ]
    return pd.DataFrame(rows)


class _ResponseWriter:
    def __init__(self, spec: DemoWorldConfig, facts: dict[str, dict[str, str]], rng: random.Random):
        self.spec, self.facts, self.rng = spec, facts, rng

    def statement(self, entity: str, attr: str, value: str) -> str:
        return self.spec.statement_templates[attr].format(entity=entity, value=value)

    def write(self, subject: str, asked: list[str], faults) -> str:
        rng, spec = self.rng, self.spec
        sentences = []
        for attr in asked:
            if rng.random() < faults.missing:
                continue
            value = self.facts[subject][attr]
            if rng.random() < faults.wrong:
                value = rng.choice([v for v in spec.attributes[attr] if v != value])
            sentences.append(self.statement(subject, attr, value))
        if rng.random() < faults.irrelevant or not sentences:  # an evasive answer says something else
            if rng.random() < 0.5:
                sentence = rng.choice(spec.irrelevant_sentences)
            else:  # a true but unasked fact, about the subject or another entity
                other = rng.choice(list(self.facts))
                attr = rng.choice(
                    [a for a in spec.attributes if other != subject or a not in asked] or list(spec.attributes)
                )
                sentence = self.statement(other, attr, self.facts[other][attr])
            sentences.insert(rng.randint(0, len(sentences)), sentence)
        if sentences and rng.random() < faults.repeated:
            i = rng.randrange(len(sentences))
            sentences.insert(i + 1, sentences[i])
        if sentences and rng.random() < faults.toxic:
            i = rng.randrange(len(sentences))
            words = sentences[i].split()
            words.insert(rng.randint(0, len(words) - 1), rng.choice(spec.toxic_words))
            sentences[i] = " ".join(words)
        if sentences and rng.random() < faults.abrupt:
            words = sentences[-1].rstrip(".!?").split()
            sentences[-1] = " ".join(words[: rng.randint(1, max(1, len(words) - 1))])
        return " " + " ".join(sentences)


def _error_spans(world: World, prompt: str, response: str) -> list[dict]:
    """qa-feedback style error spans (character offsets into the response) for one response."""
    errors = []
    for s in world.judge(prompt, response).sentences:
        if not s.complete:
            kind = "Incoherent"
        elif s.repeated:
            kind = "Redundant"
        elif s.factual is False:
            kind = "Wrong-Grounding"
        elif not s.relevant:
            kind = "Irrelevant"
        else:
            continue
        errors.append({"error type": kind, "start": s.start, "end": s.end})
    return errors


def _rating(gold: float, lo: float, hi: float, noise: float, rng: random.Random) -> int:
    return int(min(5, max(1, round(1 + 4 * (gold - lo) / (hi - lo) + rng.gauss(0, noise)))))


def feedback_lines(task: TaskConfig, facts: pd.DataFrame) -> list[str]:
    """The raw feedback file as JSON lines, including the configured number of malformed ones."""
    spec, gold_w = task.world, task.gold or GoldConfig()
    rng = random.Random(task.seed + 1)
    world = World(facts, spec)
    writer = _ResponseWriter(spec, world.facts, rng)
    lo, hi = -gold_w.toxicity, gold_w.relevance + gold_w.factuality + gold_w.completeness
    records = []
    for split, n in spec.n_prompts.items():
        for _ in range(n):
            subject = rng.choice(list(world.facts))
            asked = rng.sample(list(spec.attributes), rng.randint(1, spec.max_asked))
            asked_text = " and ".join([", ".join(asked[:-1]), asked[-1]]) if len(asked) > 1 else asked[0]
            prompt = spec.question_template.format(entity=subject, attributes=asked_text)
            responses = [writer.write(subject, asked, spec.response_faults) for _ in range(spec.responses_per_prompt)]
            golds = [gold_components(world, gold_w, prompt, r)["gold"] for r in responses]
            preference = []
            for i, j in PAIRS[: math.comb(len(responses), 2)]:
                if golds[i] == golds[j]:
                    preference.append(0)  # annotators call it a tie
                else:
                    p_first = 1 / (1 + math.exp(-(golds[i] - golds[j]) / spec.preference_temperature))
                    preference.append(1 if rng.random() < p_first else 2)
            records.append(
                {
                    "id": f"{task.task}-{len(records):05d}",
                    "split": split,
                    "prompt": prompt,
                    "demonstration": writer.write(subject, asked, spec.demonstration_faults),
                    "responses": responses,
                    "preference": preference,
                    "ratings": [_rating(g, lo, hi, spec.rating_noise, rng) for g in golds],
                    "errors": _error_spans(world, prompt, responses[0]),
                }
            )
    lines = [json.dumps(r) for r in records]
    return _with_malformed(lines, records, spec.malformed_rows, rng)


def _with_malformed(lines: list[str], records: list[dict], n: int, rng: random.Random) -> list[str]:
    """Append ``n`` faulty lines cycling through the faults a real export has."""
    faults = [
        lambda r: "{" + json.dumps(r)[1:-5],  # a truncated line: broken JSON
        lambda r: json.dumps({k: v for k, v in r.items() if k != "prompt"}),  # missing field
        lambda r: json.dumps({**r, "responses": "not a list"}),  # wrong type
        lambda r: json.dumps({**r, "responses": [""] + r["responses"][1:]}),  # empty text
        lambda r: json.dumps({**r, "preference": [7] + r["preference"][1:]}),  # unknown label
        lambda r: json.dumps(r),  # an exact duplicate of an earlier row
    ]
    out = list(lines)
    for k in range(n):
        record = dict(rng.choice(records))
        out.append(faults[k % len(faults)](record))
    return out
