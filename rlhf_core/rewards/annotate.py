"""Incremental annotation: score only the rows a scorer has not already scored.

A row is identified by a content hash of its prompt and completion, so a re-run over unchanged rows
scores nothing, a renumbered row is still recognised, and a new scorer ``version`` (other weights,
other code) re-scores everything. Bad rows are quarantined with a reason, never silently dropped.

    result = annotate(rows, build_scorer("fluency", revision=sha), previous=last_table)
    result.scored, result.quarantined, result.stats   # stats: scored, reused, quarantined, truncated
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rlhf_core.data.quarantine import QUARANTINE_COLUMNS, Ledger
from rlhf_core.rewards.base import Scorer

ANNOTATION_COLUMNS = ["row_id", "content_hash", "scorer", "scorer_version", "score", "truncated"]
MAX_CHARS = 20_000  # far above any scorer's 512-1,024 token window; longer text is a data error


@dataclass(frozen=True)
class AnnotationResult:
    scored: pd.DataFrame  # ANNOTATION_COLUMNS, one row per input row that has a score (new or reused)
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS: source (the scorer), row (row_id), field, reason, raw
    stats: dict[str, int]


def content_hash(prompt: str, completion: str) -> str:
    """Stable hash of a (prompt, completion) row, the key annotations are reused by."""
    return hashlib.sha256(json.dumps([prompt, completion], ensure_ascii=False).encode()).hexdigest()


def shard_of(prompt: Any, completion: Any, shards: int) -> int:
    """The shard a row belongs to, from its content: it stays there however the table is reordered."""
    digest = hashlib.sha256(json.dumps([prompt, completion], ensure_ascii=False, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def _input_problem(prompt: Any, completion: Any, max_chars: int) -> tuple[str, str] | None:
    if not isinstance(prompt, str):
        return "prompt", f"prompt is {type(prompt).__name__}, not text"
    if not isinstance(completion, str):
        return "completion", f"completion is {type(completion).__name__}, not text"
    if not completion.strip():
        return "completion", "empty completion"
    if len(prompt) + len(completion) > max_chars:
        return "completion", f"prompt + completion is {len(prompt) + len(completion)} characters (> {max_chars})"
    return None


def annotate(
    rows: pd.DataFrame,
    scorer: Scorer,
    previous: pd.DataFrame | None = None,
    *,
    version: str | None = None,
    max_chars: int = MAX_CHARS,
) -> AnnotationResult:
    """Score the rows of ``rows`` that ``previous`` does not already hold for this scorer name+version.

    Args:
        rows: Columns ``row_id``, ``prompt``, ``completion``.
        scorer: Any registered scorer. If it has ``invalid_reason(prompt, completion)`` rows it
            rejects are quarantined; if it has ``score_with_stats`` truncation is recorded.
        previous: An earlier ``AnnotationResult.scored`` table (any scorers, any versions), or None.
        version: Overrides ``scorer.version`` (e.g. a hash that also covers the weights).
        max_chars: Rows whose prompt + completion is longer are quarantined.

    Returns:
        The scored table (new and reused rows, in input order), the quarantine table and counts
        ``input_rows``, ``scored``, ``reused``, ``quarantined``, ``truncated``;
        ``scored + reused + quarantined == input_rows``.
    """
    missing = {"row_id", "prompt", "completion"} - set(rows.columns)
    if missing:
        raise KeyError(f"annotation input lacks column(s) {sorted(missing)}")
    version = version or scorer.version
    ledger = Ledger(source=scorer.name, n_input=len(rows))
    invalid_reason = getattr(scorer, "invalid_reason", None)

    valid: list[tuple[Any, str, str, str]] = []  # (row_id, hash, prompt, completion)
    seen_ids: set[Any] = set()
    for row_id, prompt, completion in zip(rows["row_id"], rows["prompt"], rows["completion"]):
        problem = _input_problem(prompt, completion, max_chars)
        if problem is None and row_id in seen_ids:
            problem = ("row_id", f"duplicate row_id {row_id!r}")
        if problem is None and invalid_reason is not None:
            reason = invalid_reason(prompt, completion)
            problem = ("prompt", reason) if reason else None
        if problem is not None:
            ledger.quarantine_row(row_id, problem[0], problem[1], {"prompt": prompt, "completion": completion})
            continue
        seen_ids.add(row_id)
        valid.append((row_id, content_hash(prompt, completion), prompt, completion))

    known = _previous_scores(previous, scorer.name, version)
    to_score = {h: (p, c) for _, h, p, c in valid if h not in known}  # identical rows are scored once
    fresh = _score(scorer, list(to_score.values()))
    fresh_by_hash = dict(zip(to_score, fresh))

    out, n_scored, n_reused = [], 0, 0
    for row_id, h, prompt, completion in valid:
        if h in known:
            score, truncated = known[h]
            n_reused += 1
        else:
            score, truncated = fresh_by_hash[h]
            if not math.isfinite(score):
                ledger.quarantine_row(
                    row_id, "score", f"non-finite score {score}", {"prompt": prompt, "completion": completion}
                )
                continue
            n_scored += 1
        out.append((row_id, h, scorer.name, version, score, truncated))

    scored = pd.DataFrame(out, columns=ANNOTATION_COLUMNS)
    quarantined = pd.DataFrame(ledger.quarantine, columns=QUARANTINE_COLUMNS)
    stats = {
        "input_rows": len(rows),
        "scored": n_scored,
        "reused": n_reused,
        "quarantined": len(quarantined),
        "truncated": int(scored["truncated"].sum()),
    }
    assert stats["scored"] + stats["reused"] + stats["quarantined"] == stats["input_rows"], stats
    return AnnotationResult(scored, quarantined, stats)


def _previous_scores(previous: pd.DataFrame | None, name: str, version: str) -> dict[str, tuple[float, bool]]:
    if previous is None or previous.empty:
        return {}
    same = previous[(previous["scorer"] == name) & (previous["scorer_version"] == version)]
    return {h: (float(s), bool(t)) for h, s, t in zip(same["content_hash"], same["score"], same["truncated"])}


def _score(scorer: Scorer, pairs: list[tuple[str, str]]) -> list[tuple[float, bool]]:
    if not pairs:
        return []
    prompts, completions = [p for p, _ in pairs], [c for _, c in pairs]
    if hasattr(scorer, "score_with_stats"):
        result = scorer.score_with_stats(prompts, completions)
        scores, truncated = result.scores, result.truncated
    else:
        scores, truncated = scorer(prompts, completions), [False] * len(pairs)
    if len(scores) != len(pairs):
        raise ValueError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(pairs)} rows")
    return [(float(s) if s is not None else math.nan, bool(t)) for s, t in zip(scores, truncated)]
