"""The leaderboard's tables: one row per algorithm with intervals over prompts, seed spread and the chosen setting.

Input: each evaluated trial (``rlhf_core.stages.trials``) with its summary (the evaluation's metadata)
and its per-sample rows. Where an algorithm was swept, its setting is the one with the best mean
``rank_by`` on the validation split (over seeds), and its row reports that setting's test trials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlhf_core.eval.intervals import metric_intervals
from rlhf_core.stages.trials import VALIDATION, parse


def trial_table(summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per trial: its key, algorithm, setting, seed and split, then its summary's numbers."""
    out = []
    for key, summary in summaries.items():
        trial = parse(key)
        numbers = {k: v for k, v in summary.items() if k != "algorithm" and isinstance(v, (int, float))}
        out.append(
            {
                "trial": key,
                "algorithm": trial.algorithm,
                "setting": trial.setting,
                "seed": trial.seed,
                "split": trial.split or "",
                **numbers,
            }
        )
    return pd.DataFrame(out)


def choose_settings(runs: pd.DataFrame, rank_by: str) -> tuple[dict[str, str], pd.DataFrame]:
    """Per algorithm the setting it is reported with: its only one, or the best on validation.

    Returns ``{algorithm: setting}`` and the sweep table (algorithm, setting, val and test means of
    ``rank_by`` over seeds, seeds, chosen) for the swept algorithms.
    """
    test, val = runs[runs["split"] != VALIDATION], runs[runs["split"] == VALIDATION]
    chosen, sweep = {}, []
    for algorithm, rows in test.groupby("algorithm", sort=False):
        settings = rows["setting"].unique().tolist()
        if len(settings) == 1:
            chosen[algorithm] = settings[0]
            continue
        on_val = val[val["algorithm"] == algorithm].groupby("setting")[rank_by]
        if on_val.ngroups < len(settings):
            raise ValueError(f"sweep of {algorithm}: settings {sorted(settings)} need their validation trials")
        chosen[algorithm] = on_val.mean().idxmax()
        on_test = rows.groupby("setting")[rank_by].mean()
        for setting in settings:
            sweep.append(
                {
                    "algorithm": algorithm,
                    "setting": setting,
                    f"val_{rank_by}": on_val.mean()[setting],
                    f"test_{rank_by}": on_test[setting],
                    "seeds": int(on_val.size()[setting]),
                    "chosen": setting == chosen[algorithm],
                }
            )
    return chosen, pd.DataFrame(sweep)


def leaderboard(
    summaries: dict[str, dict], tables: dict[str, pd.DataFrame], rank_by: str, seed: int, overrides: dict[str, dict]
) -> dict[str, pd.DataFrame]:
    """``board``: per algorithm, each metric's mean over seeds, its 95% interval over prompts
    (``_lo``, ``_hi``) and, with several seeds, its std over them (``_seed_std``); ``intervals``: the same
    numbers one metric per row; ``sweep``: the swept settings on val and test; ``trials``: every trial."""
    runs = trial_table(summaries)
    if rank_by not in runs:
        raise ValueError(f"evaluation.rank_by {rank_by!r} is not an evaluated column; have {sorted(runs.columns)}")
    chosen, sweep = choose_settings(runs, rank_by)
    metrics = [c for c in runs.columns if c not in ("trial", "algorithm", "setting", "seed", "split", "n")]
    metrics = list(dict.fromkeys([rank_by, *(["reward"] if "reward" in metrics else []), *metrics]))
    rows, long = [], []
    for algorithm, setting in chosen.items():
        reported = runs[(runs["algorithm"] == algorithm) & (runs["split"] != VALIDATION) & (runs["setting"] == setting)]
        ci = metric_intervals([tables[t] for t in reported["trial"]], metrics, seed).set_index("metric")
        row = {
            "algorithm": algorithm,
            "setting": _describe(algorithm, setting, overrides, sweep),
            "seeds": len(reported),
        }
        for m in metrics:
            # The value is always the evaluation's own, averaged over seeds. The interval goes with it only where
            # its statistic gives that same value: a corpus metric with no per-sample statistic (ROUGE, toxicity
            # probability) has none, nor has distinct-n counted another way (per prompt, case kept).
            value = float(reported[m].mean())
            if not np.isclose(ci.loc[m, "value"], value, rtol=1e-6, atol=1e-9):
                ci.loc[m, ["lo", "hi"]] = np.nan
            row.update({m: value, f"{m}_lo": ci.loc[m, "lo"], f"{m}_hi": ci.loc[m, "hi"]})
            if len(reported) > 1:
                row[f"{m}_seed_std"] = float(reported[m].std(ddof=1))
            long.append(
                {
                    "algorithm": algorithm,
                    "metric": m,
                    "mean": row[m],
                    "ci95_lo": ci.loc[m, "lo"],
                    "ci95_hi": ci.loc[m, "hi"],
                    "seed_std": float(reported[m].std(ddof=1)) if len(reported) > 1 else np.nan,
                    "seeds": len(reported),
                }
            )
        rows.append(row)
    board = pd.DataFrame(rows).sort_values(rank_by, ascending=False).reset_index(drop=True)
    return {"board": board, "intervals": pd.DataFrame(long), "sweep": sweep, "trials": runs}


def _describe(algorithm: str, setting: str, overrides: dict[str, dict], sweep: pd.DataFrame) -> str:
    """Where the reported setting comes from: a sweep on val, the committed overrides, or the shared settings."""
    if not sweep.empty and algorithm in set(sweep["algorithm"]):
        return f"{setting} (best on val of {int((sweep['algorithm'] == algorithm).sum())})"
    if algorithm in overrides:
        return (
            " ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(overrides[algorithm].items())
            )
            + " (policy.overrides)"
        )
    return setting or "shared"


def readable(board: pd.DataFrame) -> pd.DataFrame:
    """The board as text cells: ``mean [lo, hi]`` per metric, ``± std`` over seeds where there are several."""
    out = board[[c for c in ("algorithm", "setting", "seeds") if c in board]].copy()
    for metric in [c for c in board if f"{c}_lo" in board]:
        cells = [
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(board[metric], board[f"{metric}_lo"], board[f"{metric}_hi"])
        ]
        if f"{metric}_seed_std" in board:
            cells = [f"{c} ±{s:.3f}" for c, s in zip(cells, board[f"{metric}_seed_std"])]
        out[metric] = cells
    return out
