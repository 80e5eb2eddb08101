"""Standard table contracts (TRL column names), so later stages consume every task the same way.

A table may carry extra columns (``id``, ``split``, ``meta``); these are the required ones.
"""

from __future__ import annotations

import pandas as pd

PROMPT_ONLY = ("prompt",)
PROMPT_COMPLETION = ("prompt", "completion")  # TRL SFT (prompt-completion)
PREFERENCE = ("prompt", "chosen", "rejected")  # TRL DPO / Reward (explicit prompt)
RATED_COMPLETION = ("prompt", "completion", "score")  # absolute ratings, rewarded offline data
RANKED_COMPLETIONS = ("prompt", "completions")  # K replies, best first
TOKEN_LABELS = ("id", "text", "feedback_tags")  # FineGrainedRLHF token-classification files

SPLITS = ("train", "val", "test")


def require_columns(df: pd.DataFrame, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing}; has {list(df.columns)}")


MESSAGES = ("messages",)  # TRL SFT conversational: [{role, content}, ...]; loss on every assistant turn
