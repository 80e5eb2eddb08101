"""Pure validators behind the asset checks: each returns ``(passed, metadata)``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.data.schemas import PREFERENCE, require_columns


def non_empty_table(df: pd.DataFrame, table: str) -> tuple[bool, dict[str, Any]]:
    return len(df) > 0, {"rows": len(df), "table": table}


def preference_pairs_valid(df: pd.DataFrame, allow_empty: bool = False) -> tuple[bool, dict[str, Any]]:
    """Every pair has a prompt and two different, non-empty responses (and there is one, unless ``allow_empty``)."""
    require_columns(df, PREFERENCE, "preference pairs")
    empty = int((df["chosen"].str.strip() == "").sum() + (df["rejected"].str.strip() == "").sum())
    identical = int((df["chosen"] == df["rejected"]).sum())
    return (allow_empty or len(df) > 0) and empty == 0 and identical == 0, {
        "rows": len(df),
        "empty_responses": empty,
        "identical_pairs": identical,
    }


def at_least(value: float, threshold: float, name: str) -> tuple[bool, dict[str, Any]]:
    return bool(value >= threshold), {name: float(value), "threshold": float(threshold)}


def finite_columns(df: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    numeric = df.select_dtypes("number")
    bad = {c: int((~np.isfinite(numeric[c])).sum()) for c in numeric}
    return not any(bad.values()), {"non_finite": bad}
