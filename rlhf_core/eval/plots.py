"""PNG plots for asset metadata: loss curves, histograms, leaderboard bars (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def loss_curve(history: list[dict], path: Path, title: str) -> None:
    plt, fig, ax = _figure()
    steps = [h["step"] for h in history]
    losses = np.array([h["loss"] for h in history])
    ax.plot(steps, losses, alpha=0.3, label="loss")
    window = max(1, len(losses) // 20)
    ax.plot(steps, pd.Series(losses).rolling(window, min_periods=1).mean(), label=f"mean of {window}")
    ax.set(title=title, xlabel="optimizer step", ylabel="loss")
    ax.legend()
    _save(plt, fig, path)


def histogram(series: dict[str, np.ndarray], path: Path, title: str) -> None:
    plt, fig, ax = _figure()
    for name, values in series.items():
        ax.hist(values, bins=30, alpha=0.6, label=name)
    ax.set(title=title)
    ax.legend()
    _save(plt, fig, path)


def bar_chart(df: pd.DataFrame, label: str, columns: list[str], path: Path) -> None:
    plt, fig, ax = _figure()
    x = np.arange(len(df))
    width = 0.8 / len(columns)
    for k, col in enumerate(columns):  # with a column's interval (<col>_lo, <col>_hi) as error bars
        err = [df[col] - df[f"{col}_lo"], df[f"{col}_hi"] - df[col]] if f"{col}_lo" in df else None
        ax.bar(x + k * width, df[col], width, label=col, yerr=err, capsize=2)
    ax.set_xticks(x + width * (len(columns) - 1) / 2, df[label])
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend()
    _save(plt, fig, path)
