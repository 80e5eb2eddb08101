"""[FG] detoxification prompts: RealToxicityPrompts (docs/sources.md §1.1, "Detoxification").

- loader ``rtp_prompts``: ``prompts.jsonl`` of ``allenai/real-toxicity-prompts``; one row per
  line with the prompt text and its Perspective toxicity (NaN when the dataset has none).
- builder ``detox_prompts``: prompt-only rows split by a seeded permutation into test / val /
  train (``test_size``, ``val_size``; the rest is train).

The [FG] repo ships no detox code (its README says "will add", docs/sources.md §1.1); which
prompts and split sizes the paper used is UNVERIFIED, so both sizes are options and there is no
filter by toxicity.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, check_number, get_field, get_str, parse_rows, read_json_lines, source_file
from rlhf_core.data.transforms import check_options, one_input, option


@loader("rtp_prompts")
def load_rtp(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Prompt rows ``{id, prompt, toxicity, challenging}``."""
    path = source_file(source, "prompts")
    ledger = Ledger(str(path))

    def parse(row_no: int, obj: dict) -> dict:
        prompt = get_field(obj, "prompt")
        if not isinstance(prompt, dict):
            raise RowError("prompt", f"expected an object, got {type(prompt).__name__}")
        tox = prompt.get("toxicity")
        return {
            "id": str(row_no),
            "prompt": get_str(prompt, "text"),
            "toxicity": math.nan if tox is None else check_number(tox, "prompt.toxicity"),
            "challenging": bool(obj.get("challenging", False)),
        }

    rows = parse_rows(read_json_lines(path, ledger), parse, ledger)
    return ledger.result(pd.DataFrame(rows, columns=["id", "prompt", "toxicity", "challenging"]))


@builder("detox_prompts")
def build_detox_prompts(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, prompt, meta}``; options ``test_size``, ``val_size``, ``split_seed``."""
    check_options(spec, {"test_size", "val_size", "split_seed"})
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    order = np.random.default_rng(option(spec, "split_seed", task.seed if task else 0)).permutation(len(df))
    n_test, n_val = option(spec, "test_size"), option(spec, "val_size")
    splits = np.array(["train"] * len(df), dtype=object)
    splits[order[:n_test]] = "test"
    splits[order[n_test : n_test + n_val]] = "val"
    meta = [
        json.dumps({"toxicity": None if math.isnan(t) else t, "challenging": bool(c)})
        for t, c in zip(df["toxicity"], df["challenging"])
    ]
    return ledger.result(pd.DataFrame({"id": df["id"], "split": splits, "prompt": df["prompt"], "meta": meta}))
