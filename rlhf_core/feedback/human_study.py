"""Human ranking studies: read the exported ballots, merge each prompt's ballots, score the models.

Two export layouts (docs/sources.md §7.4, §8):
- ``argilla``: [CRS]'s Argilla export, one JSON file per annotator group: a list with one entry per prompt,
  each a list of ``{"response-1": rank, "response-2": rank, ..., "name": annotator}`` (rank 1 is best), and
  a keys file ``{entry: {prompt: {"0": model, "1": model, ...}}}`` that says which model wrote
  ``response-(k+1)`` of each prompt, in the same prompt order as the group's file (the seed's
  ``all_keys.json``);
- ``jsonl``: one ballot per line, ``{"prompt", "annotator", "ranking": [model, ...] (best first)[, "group"]}``.

A ballot that is not a ranking of the prompt's models (a tie, a missing or duplicate model) is quarantined
with its group, prompt, annotator and reason; the prompt is scored on its other ballots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.feedback.ranking import (
    RankingError,
    borda_points,
    check_ballot,
    group_summary,
    merge_prompt,
    model_scores,
)


@dataclass
class Ballots:
    """Valid ballots per (group, prompt) in reading order, and the quarantined ones."""

    ledger: Ledger = field(default_factory=lambda: Ledger("human rankings"))
    by_prompt: dict[tuple[str, str], list[list[str]]] = field(default_factory=dict)
    annotators: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(
        self,
        group: str,
        prompt: str,
        annotator: str,
        ranking: Any,
        models: list[str],
        where: str,
    ) -> None:
        self.ledger.n_input += 1
        try:
            if not isinstance(ranking, list) or not all(isinstance(m, str) for m in ranking):
                raise RankingError(f"expected a list of model names, got {ranking!r}")
            ballot = check_ballot(ranking, models)
        except RankingError as err:
            self.ledger.quarantine_row(
                None,
                "ranking",
                f"{where}: annotator {annotator!r}: {err}",
                {
                    "group": group,
                    "prompt": prompt,
                    "annotator": annotator,
                    "ranking": ranking,
                },
            )
            return
        self.by_prompt.setdefault((group, prompt), []).append(ballot)
        self.annotators.setdefault((group, prompt), []).append(annotator)


def read_jsonl(path: Path, into: Ballots) -> None:
    """Plain ballots; a prompt's models are those of its first well-formed ballot."""
    models_of: dict[tuple[str, str], list[str]] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
            group, prompt, annotator = (
                str(row.get("group", "all")),
                row["prompt"],
                str(row["annotator"]),
            )
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as err:
            into.ledger.n_input += 1
            into.ledger.quarantine_row(
                line_no,
                "line",
                f"{where}: not a {{prompt, annotator, ranking}} object: {err}",
                line,
            )
            continue
        ranking = row.get("ranking")
        models = models_of.setdefault((group, prompt), sorted(ranking) if isinstance(ranking, list) else [])
        into.add(group, prompt, annotator, ranking, models, where)


def read_argilla(path: Path, keys: dict[str, dict[str, str]], group: str, into: Ballots) -> None:
    """One group's Argilla export; ``keys`` maps each prompt (in file order) to ``{"k": model}``."""
    records = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(records, list) or len(records) != len(keys):
        raise ValueError(
            f"{path}: expected a list of {len(keys)} prompts (the keys entry), got "
            f"{len(records) if isinstance(records, list) else type(records).__name__}"
        )
    for i, ((prompt, mapping), responses) in enumerate(zip(keys.items(), records)):
        models = [mapping[k] for k in sorted(mapping, key=int)]
        for j, resp in enumerate(responses):
            ranks = {int(k.split("-")[-1]) - 1: v for k, v in resp.items() if k.startswith("response-")}
            by_rank = sorted(ranks, key=lambda k: ranks[k])
            ranking: Any = [models[k] for k in by_rank if k < len(models)]
            if sorted(ranks.values()) != list(range(1, len(models) + 1)):
                ranking = {models[k] if k < len(models) else f"response-{k + 1}": r for k, r in ranks.items()}
            into.add(
                group,
                prompt,
                str(resp.get("name", resp.get("user_id", j))),
                ranking,
                models,
                f"{path}[{i}][{j}]",
            )


def score(ballots: Ballots) -> tuple[CleanResult, pd.DataFrame]:
    """``(per-prompt table, per-model board)``: each prompt's merged ranking and points (its ballots beyond
    the first counted as merged), each model's mean points per group, their mean and population std."""
    rows = []
    for (group, prompt), votes in ballots.by_prompt.items():
        merged = merge_prompt(votes)
        ballots.ledger.drop("merged_into_the_prompt_ranking", len(votes) - 1)
        rows.append(
            {
                "group": group,
                "prompt": prompt,
                "n_ballots": len(votes),
                "annotators": ballots.annotators[(group, prompt)],
                "ranking": merged,
                "points": json.dumps(borda_points(merged)),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=["group", "prompt", "n_ballots", "annotators", "ranking", "points"],
    )
    per_group = {g: model_scores(table.loc[table["group"] == g, "ranking"]) for g in table["group"].unique()}
    summary = group_summary(per_group)
    return ballots.ledger.result(table), pd.DataFrame([{"model": m, **s} for m, s in summary.items()])
