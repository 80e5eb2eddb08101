"""Loaders and builders of the demo task: generated raw feedback -> clean table -> RM files."""

from __future__ import annotations

import json

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger, parse_jsonl
from rlhf_core.data.registry import builder, loader
from rlhf_core.demo.gold import SENTENCE
from rlhf_core.demo.world import PAIRS, feedback_lines, make_facts

FEEDBACK_FIELDS = {
    "id": str,
    "split": str,
    "prompt": str,
    "demonstration": str,
    "responses": list,
    "preference": list,
    "ratings": list,
    "errors": list,
}
ERROR_TYPES = {"Irrelevant", "Redundant", "Incoherent", "Wrong-Grounding", "Unverifiable"}


@loader("demo_world")
def load_world(source: SourceConfig, task: TaskConfig) -> CleanResult:
    facts = make_facts(_world(task), task.seed)
    ledger = Ledger("demo_world", n_input=len(facts))
    return ledger.result(facts)


@loader("demo_feedback")
def load_feedback(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Generate the raw JSONL and parse it like a downloaded file, quarantining bad rows."""
    lines = feedback_lines(task, make_facts(_world(task), task.seed))
    ledger = Ledger("demo_feedback.jsonl")
    kept = []
    for lineno, obj in parse_jsonl(lines, ledger):
        problem = _feedback_problem(obj, task.world.responses_per_prompt)
        if problem:
            ledger.quarantine_row(lineno, *problem, obj)
            continue
        kept.append({**obj, "errors": json.dumps(obj["errors"])})
    return ledger.result(pd.DataFrame(kept, columns=list(FEEDBACK_FIELDS)))


def _feedback_problem(obj: dict, n_responses: int) -> tuple[str, str] | None:
    """(field, reason) for the first problem of a raw feedback row, or None if it is usable."""
    for name, kind in FEEDBACK_FIELDS.items():
        if name not in obj:
            return name, "missing field"
        if not isinstance(obj[name], kind):
            return name, f"expected {kind.__name__}, got {type(obj[name]).__name__}"
    if len(obj["responses"]) != n_responses:
        return "responses", f"expected {n_responses} responses, got {len(obj['responses'])}"
    for i, text in enumerate(obj["responses"]):
        if not isinstance(text, str) or not text.strip():
            return f"responses[{i}]", "empty or non-string response"
    if not obj["prompt"].strip():
        return "prompt", "empty prompt"
    if any(p not in (0, 1, 2) for p in obj["preference"]) or len(obj["preference"]) != len(PAIRS):
        return "preference", f"labels must be 6 values in {{0,1,2}}, got {obj['preference']}"
    if any(not isinstance(r, int) or not 1 <= r <= 5 for r in obj["ratings"]):
        return "ratings", f"ratings must be ints in 1..5, got {obj['ratings']}"
    first = obj["responses"][0]
    for err in obj["errors"]:
        if err.get("error type") not in ERROR_TYPES:
            return "errors", f"unknown error type {err.get('error type')!r}"
        start, end = err.get("start"), err.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(first)):
            return "errors", f"span {start}..{end} outside response 1"
        if (start > 0 and not first[start - 1].isspace()) or (end < len(first) and not first[end].isspace()):
            return "errors", f"span {start}..{end} is not on word boundaries"
    return None


@builder("demo_clean_feedback")
def clean_feedback(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rules: drop exact duplicates (same prompt and responses); drop over-long responses."""
    (raw,) = inputs.values()
    ledger = Ledger("clean_feedback", n_input=len(raw))
    max_chars = int(spec.options.get("max_response_chars", 2000))
    key = raw["prompt"] + "\x00" + raw["responses"].map(lambda rs: "\x00".join(rs))
    duplicate = key.duplicated()
    ledger.drop("duplicate", int(duplicate.sum()))
    too_long = ~duplicate & raw["responses"].map(lambda rs: max(len(r) for r in rs) > max_chars)
    ledger.drop("too_long", int(too_long.sum()))
    return ledger.result(raw[~duplicate & ~too_long])


@builder("demo_sft_data")
def sft_data(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    (clean,) = inputs.values()
    out = clean[["id", "split", "prompt", "demonstration"]].rename(columns={"demonstration": "completion"})
    return Ledger("sft_data", n_input=len(clean)).result(out)


@builder("demo_responses")
def responses(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Every logged response as a prompt/completion row: the data offline RL learns from."""
    (clean,) = inputs.values()
    out = clean[["id", "split", "prompt", "responses"]].explode("responses").rename(columns={"responses": "completion"})
    out["id"] = out["id"] + "-r" + out.groupby(level=0).cumcount().astype(str)
    return Ledger("offline_data", n_input=len(out)).result(out)


@builder("demo_preference_pairs")
def preference_pairs(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """The 6 labelled pairs per prompt as prompt/chosen/rejected; ties are dropped by rule."""
    (clean,) = inputs.values()
    ledger = Ledger("preference_pairs")
    rows = []
    for rec in clean.itertuples(index=False):
        for (i, j), label in zip(PAIRS, rec.preference):
            ledger.n_input += 1
            if label == 0:
                ledger.drop("tie")
                continue
            chosen, rejected = (i, j) if label == 1 else (j, i)
            rows.append(
                {
                    "id": f"{rec.id}-{i}{j}",
                    "split": rec.split,
                    "prompt": rec.prompt,
                    "chosen": rec.responses[chosen],
                    "rejected": rec.responses[rejected],
                }
            )
    return ledger.result(pd.DataFrame(rows))


@builder("demo_rankings")
def rankings(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """K-wise rankings ([CRS] ranking RM files): a prompt's responses ordered best first by their
    wins in its 6 labelled comparisons (a tie is half a win each); a prompt whose responses all
    tie is dropped by rule. Equal win counts keep the logged order."""
    (clean,) = inputs.values()
    ledger = Ledger("rankings", n_input=len(clean))
    rows = []
    for rec in clean.itertuples(index=False):
        wins = [0.0] * len(rec.responses)
        for (i, j), label in zip(PAIRS, rec.preference):
            for k, share in ((i, {0: 0.5, 1: 1.0, 2: 0.0}[label]), (j, {0: 0.5, 1: 0.0, 2: 1.0}[label])):
                wins[k] += share
        if len(set(wins)) == 1:
            ledger.drop("all_tied")
            continue
        order = sorted(range(len(wins)), key=lambda k: -wins[k])
        rows.append(
            {"id": rec.id, "split": rec.split, "prompt": rec.prompt, "completions": [rec.responses[k] for k in order]}
        )
    return ledger.result(pd.DataFrame(rows))


@builder("demo_absolute_ratings")
def absolute_ratings(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """One row per response; ``score`` maps the 1..5 rating onto [0, 1]."""
    (clean,) = inputs.values()
    rows = [
        {
            "id": f"{rec.id}-r{k}",
            "split": rec.split,
            "prompt": rec.prompt,
            "completion": text,
            "rating": int(rating),
            "score": (int(rating) - 1) / 4,
        }
        for rec in clean.itertuples(index=False)
        for k, (text, rating) in enumerate(zip(rec.responses, rec.ratings))
    ]
    return Ledger("absolute_ratings", n_input=len(rows)).result(pd.DataFrame(rows))


@builder("demo_fine_grained_labels")
def fine_grained_labels(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Response 1 as sentence segments, each labelled with its error type or 'O'."""
    (clean,) = inputs.values()
    rows = []
    for rec in clean.itertuples(index=False):
        text = rec.responses[0]
        spans = json.loads(rec.errors)
        segments, labels = [], []
        for m in SENTENCE.finditer(text):
            if not m.group().strip():
                continue
            label = next((e["error type"] for e in spans if e["start"] < m.end() and e["end"] > m.start()), "O")
            segments.append(m.group().strip())
            labels.append(label)
        rows.append(
            {
                "id": rec.id,
                "split": rec.split,
                "prompt": rec.prompt,
                "completion": text,
                "segments": segments,
                "labels": labels,
            }
        )
    return Ledger("fine_grained_labels", n_input=len(rows)).result(pd.DataFrame(rows))


def _world(task: TaskConfig):
    if task.world is None:
        raise ValueError(f"task {task.task!r}: the demo loaders need a 'world' section")
    return task.world
