"""Merging several people's rankings of the same answers: Tideman ranked pairs, then Borda points.

[CRS]'s human study (docs/sources.md §7.4): each annotator ranks the three answers of a prompt; when a
prompt has several annotators, their rankings are merged by Tideman's ranked pairs; the merged ranking
gives each model points (rank 1 of n -> 1, rank k -> (n - k + 1) / n: 1, 2/3, 1/3 for three models),
and a model's score is its mean over prompts. A study run by several annotator groups reports, per
model, the mean over groups and their population standard deviation.

Ranked pairs, as [CRS] runs it:
1. tally every head-to-head: ``wins[a][b]`` = how many ballots put a above b;
2. take each ordered pair (a, b) with margin ``wins[a][b] - wins[b][a] >= 0`` (a zero margin gives both
   directions), strongest margin first;
3. lock each pair in unless it closes a cycle with the pairs locked before it;
4. read the order off the locked graph: repeatedly take a candidate no locked pair beats.
Equal margins, and several unbeaten candidates in step 4, are taken in alphabetical order of the
candidates (the seed's order too: its tally matrix is indexed by the sorted names).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence


class RankingError(ValueError):
    """A ballot that is not a ranking of the item's candidates (missing, duplicate or unknown model)."""


def check_ballot(ballot: Sequence[str], candidates: Iterable[str]) -> list[str]:
    """The ballot as a list, or ``RankingError`` naming what is wrong with it."""
    expected, seen = set(candidates), list(ballot)
    dupes = sorted({m for m in seen if seen.count(m) > 1})
    if dupes:
        raise RankingError(f"model(s) ranked twice: {dupes}")
    if unknown := sorted(set(seen) - expected):
        raise RankingError(f"unknown model(s): {unknown}")
    if missing := sorted(expected - set(seen)):
        raise RankingError(f"model(s) not ranked: {missing}")
    return seen


def _closes_cycle(locked: dict[str, set[str]], winner: str, loser: str) -> bool:
    """Whether ``winner > loser`` closes a cycle: the loser already reaches the winner."""
    stack, seen = [loser], set()
    while stack:
        node = stack.pop()
        if node == winner:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(locked[node])
    return False


def ranked_pairs(ballots: Sequence[Sequence[str]]) -> list[str]:
    """The merged ranking (best first) of ballots that each rank the same candidates best first."""
    if not ballots:
        raise RankingError("no ballots to merge")
    names = sorted(ballots[0])
    for ballot in ballots:
        check_ballot(ballot, names)
    position = [{m: i for i, m in enumerate(b)} for b in ballots]
    wins = {(a, b): sum(p[a] < p[b] for p in position) for a in names for b in names if a != b}
    pairs = [(wins[a, b] - wins[b, a], a, b) for a in names for b in names if a != b and wins[a, b] >= wins[b, a]]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    locked: dict[str, set[str]] = {m: set() for m in names}
    for _, a, b in pairs:
        if not _closes_cycle(locked, a, b):
            locked[a].add(b)
    order, left = [], set(names)
    while left:
        beaten = {b for a in left for b in locked[a] if b in left}
        top = min(left - beaten)  # never empty: the locked graph has no cycle
        order.append(top)
        left.remove(top)
    return order


def borda_points(ranking: Sequence[str]) -> dict[str, float]:
    """Points of a ranking of n models: rank k (1-based) -> (n - k + 1) / n."""
    n = len(ranking)
    return {model: (n - k) / n for k, model in enumerate(ranking)}


def merge_prompt(ballots: Sequence[Sequence[str]]) -> list[str]:
    """One prompt's ranking: the only ballot as it is, several merged by ranked pairs."""
    return list(ballots[0]) if len(ballots) == 1 else ranked_pairs(ballots)


def model_scores(rankings: Iterable[Sequence[str]]) -> dict[str, float]:
    """Each model's mean Borda points over the prompts' merged rankings."""
    totals: dict[str, list[float]] = {}
    for ranking in rankings:
        for model, points in borda_points(ranking).items():
            totals.setdefault(model, []).append(points)
    return {model: sum(p) / len(p) for model, p in sorted(totals.items())}


def group_summary(
    scores_by_group: dict[str, dict[str, float]],
) -> dict[str, dict[str, float]]:
    """Per model: its score in each group, their mean and population standard deviation."""
    models = sorted({m for scores in scores_by_group.values() for m in scores})
    out = {}
    for model in models:
        values = [scores[model] for scores in scores_by_group.values() if model in scores]
        out[model] = {
            **{f"group:{g}": s[model] for g, s in scores_by_group.items() if model in s},
            "mean": statistics.fmean(values),
            "std": statistics.pstdev(values),
        }
    return out
