"""How sure a leaderboard number is: bootstrap 95% intervals over prompts, and the spread over training seeds.

A metric is a mean of per-row values (a reward component, a length, ...) or a corpus statistic (distinct-n).
Rows are resampled by prompt, not by row, so several samples of one prompt move together: the interval
answers "would another set of prompts from the same distribution rank these algorithms the same way?".
The percentile method is used (BCa needs a statistic that varies, which a constant column or a small
corpus does not).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import sparse, stats

CONFIDENCE = 0.95
RESAMPLES = 1000


def _grams(text: str, n: int) -> list[tuple[str, ...]]:
    words = text.lower().split()  # as rlhf_core.eval.metrics.distinct_n
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n_statistic(texts_per_prompt: list[list[str]], n: int) -> Callable[[np.ndarray], np.ndarray]:
    """distinct-n of a resample, vectorised: ``stat(idx)`` with ``idx`` of shape (B, prompts) -> (B,).

    Each prompt's n-grams are a row of a prompt x n-gram count matrix; a resample that draws prompt p
    k times counts its n-grams k times, and an n-gram is distinct if any drawn prompt has it.
    """
    vocab: dict[tuple[str, ...], int] = {}
    rows, cols = [], []
    for p, texts in enumerate(texts_per_prompt):
        for text in texts:
            for gram in _grams(text, n):
                rows.append(p)
                cols.append(vocab.setdefault(gram, len(vocab)))
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts_per_prompt), max(len(vocab), 1)))
    per_prompt = np.asarray(counts.sum(axis=1)).ravel()
    present = (counts > 0).astype(np.float64)

    def stat(idx: np.ndarray) -> np.ndarray:
        idx = np.atleast_2d(idx)
        draws = np.zeros((idx.shape[0], len(texts_per_prompt)))
        np.add.at(draws, (np.arange(idx.shape[0])[:, None], idx), 1.0)
        total = draws @ per_prompt
        unique = np.asarray((sparse.csr_matrix(draws) @ present > 0).sum(axis=1)).ravel()
        return np.divide(unique, total, out=np.zeros_like(total), where=total > 0)

    return stat


def mean_statistic(values: np.ndarray, prompt_of_row: np.ndarray, n_prompts: int) -> Callable[[np.ndarray], np.ndarray]:
    """The mean over rows of a resample of prompts (a prompt with k rows weighs k)."""
    ok = ~np.isnan(values)
    sums = np.bincount(prompt_of_row[ok], weights=values[ok], minlength=n_prompts)
    counts = np.bincount(prompt_of_row[ok], minlength=n_prompts).astype(np.float64)

    def stat(idx: np.ndarray) -> np.ndarray:
        total = counts[idx].sum(axis=-1)
        return np.divide(sums[idx].sum(axis=-1), total, out=np.full(total.shape, np.nan), where=total > 0)

    return stat


def bootstrap(
    stat: Callable[[np.ndarray], np.ndarray], n_prompts: int, seed: int, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """The percentile interval of ``stat`` over resamples of the prompts (NaN with fewer than 2 prompts)."""
    if n_prompts < 2:
        return float("nan"), float("nan")
    res = stats.bootstrap(
        (np.arange(n_prompts),),
        lambda idx, axis=-1: stat(idx),
        vectorized=True,
        n_resamples=resamples,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# Corpus statistics the leaderboard reports that are not a mean of a row column, recomputed per resample.
CORPUS = {"distinct_1": 1, "distinct_2": 2}


def metric_intervals(
    runs: list[pd.DataFrame], metrics: list[str], seed: int, text: str = "completion", resamples: int = RESAMPLES
) -> pd.DataFrame:
    """One row per metric: its mean over ``runs`` (one table per training seed) and the bootstrap
    interval of that mean over prompts.

    Each table holds one sample per row with ``id`` (or ``prompt``) naming its prompt; a resample
    draws prompts once for all runs, so a prompt's samples under every seed move together. A
    metric is a numeric column (its mean over rows) or a name of ``CORPUS``; any other metric
    gets NaN.
    """
    key = "id" if "id" in runs[0] else "prompt"
    _, names = pd.factorize(pd.concat([r[key] for r in runs], ignore_index=True))
    codes = [names.get_indexer(r[key]) for r in runs]
    n_prompts = len(names)
    out = []
    for metric in metrics:
        stats_per_run = [_statistic(r, c, n_prompts, metric, text) for r, c in zip(runs, codes)]
        if any(s is None for s in stats_per_run):
            out.append({"metric": metric, "value": float("nan"), "lo": float("nan"), "hi": float("nan")})
            continue

        def stat(idx: np.ndarray, parts=stats_per_run) -> np.ndarray:
            return np.mean([part(idx) for part in parts], axis=0)

        value = float(stat(np.arange(n_prompts)[None, :])[0])
        lo, hi = bootstrap(stat, n_prompts, seed, resamples)
        out.append({"metric": metric, "value": value, "lo": lo, "hi": hi})
    return pd.DataFrame(out, columns=["metric", "value", "lo", "hi"])


def _statistic(
    rows: pd.DataFrame, codes: np.ndarray, n_prompts: int, metric: str, text: str
) -> Callable[[np.ndarray], np.ndarray] | None:
    column = rows.get(metric)
    if column is not None and pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return mean_statistic(column.to_numpy(np.float64), codes, n_prompts)
    if metric in CORPUS and text in rows:
        texts = rows.groupby(codes)[text].apply(list).reindex(range(n_prompts)).tolist()
        return distinct_n_statistic([t if isinstance(t, list) else [] for t in texts], CORPUS[metric])
    return None
