"""[RF] RLHFlow preference data: standard-format pairs, pair-PM files, ArmoRM objectives.

- loader ``rlhflow_pairs``: Parquet files with ``chosen`` / ``rejected`` conversations (lists of
  ``{role, content}``), stored as JSON strings (SPEC 1.5).
- builder ``pair_pm``: the pairwise-preference-model SFT rows of ``process_pair_data.py``
  (SPEC 2.4): filters, plain-template context, the chosen answer at a random position, then all
  inputs concatenated and shuffled with seed 42.
- loader ``armorm_multi_objective``: ``messages`` plus the 19 attribute columns, NaN where an
  attribute is missing (SPEC 1.5, 2.5 stage 1 labels).

Deviation from the seed: the position of the chosen answer is drawn from numpy's unseeded global
RNG in the seed; here from ``numpy.random.default_rng(task.seed)``, so a run is reproducible. The
seed-42 shuffle is ``numpy.random.default_rng(42).permutation`` (what ``Dataset.shuffle(seed=42)`` draws).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, get_field, read_parquet_source
from rlhf_core.data.transforms import check_options, option

ARMORM_ATTRIBUTES = (
    "helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence", "helpsteer-complexity",
    "helpsteer-verbosity", "ultrafeedback-overall_score", "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness", "ultrafeedback-honesty", "ultrafeedback-helpfulness", "beavertails-is_safe",
    "prometheus-score", "argilla-overall_quality", "argilla-judge_lm", "code-complexity", "code-style",
    "code-explanation", "code-instruction-following", "code-readability",
)  # fmt: skip


def _conversation(value, field: str) -> list[dict]:
    """A list of ``{role, content}`` messages (Parquet gives arrays of dicts)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list):
        raise RowError(field, f"expected a list of messages, got {type(value).__name__}")
    if not value:
        raise RowError(field, "empty conversation")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise RowError(f"{field}[{i}]", "expected {role: str, content: str}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


# ----------------------------------------------------------------------------- pairs


@loader("rlhflow_pairs")
def load_pairs(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Pair rows ``{id, split, origin, chosen, rejected}`` (conversations as JSON strings)."""
    origin = source.hub_id or source.path

    def parse(row_no: int, raw: dict) -> dict:
        chosen = _conversation(get_field(raw, "chosen"), "chosen")
        rejected = _conversation(get_field(raw, "rejected"), "rejected")
        return {"id": f"{origin}-{row_no}", "origin": origin, "chosen": json.dumps(chosen, ensure_ascii=False),
                "rejected": json.dumps(rejected, ensure_ascii=False)}  # fmt: skip

    return read_parquet_source(source, parse, ["id", "split", "origin", "chosen", "rejected"])


@builder("pair_pm")
def build_pair_pm(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Prompt-completion rows ``{id, split, prompt, completion}``: the user message
    ``[CONTEXT] ... [RESPONSE A] ... [RESPONSE B] ... \\n`` and the answer ``A`` or ``B``.

    Options: ``shuffle_seed`` (42).
    """
    check_options(spec, {"shuffle_seed"})
    df = pd.concat(list(inputs.values()), ignore_index=True)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    rng = np.random.default_rng(task.seed)
    out = []
    for row in df.itertuples(index=False):
        chosen, rejected = json.loads(row.chosen), json.loads(row.rejected)
        rule = _pair_pm_rule(chosen, rejected)
        if rule:
            ledger.drop(rule)
            continue
        context = "\n" + "".join(f"\n\n<turn> {m['role']}\n {m['content']}" for m in chosen[:-1]) + "\n\n\n"
        good, bad = chosen[-1]["content"], rejected[-1]["content"]
        label = "A" if rng.random() < 0.5 else "B"
        first, second = (good, bad) if label == "A" else (bad, good)
        out.append({"id": row.id, "split": row.split, "completion": label,
                    "prompt": f"[CONTEXT] {context} [RESPONSE A] {first} [RESPONSE B] {second} \n"})  # fmt: skip
    table = pd.DataFrame(out, columns=["id", "split", "prompt", "completion"])
    order = np.random.default_rng(option(spec, "shuffle_seed", 42)).permutation(len(table))
    return ledger.result(table.iloc[order])


def _pair_pm_rule(chosen: list[dict], rejected: list[dict]) -> str | None:
    """The first pair-PM filter a pair fails, or None."""
    if len(chosen) % 2 or len(rejected) % 2:
        return "odd_length"
    if len(chosen) != len(rejected):
        return "unequal_length"
    roles = ("user", "assistant")
    if any(m["role"] != roles[i % 2] for conv in (chosen, rejected) for i, m in enumerate(conv)):
        return "not_alternating"
    if any(not m["content"].strip() for m in chosen + rejected):
        return "empty_content"
    if chosen[:-1] != rejected[:-1]:
        return "context_mismatch"
    return None


# ----------------------------------------------------------------------------- ArmoRM


@loader("armorm_multi_objective")
def load_armorm(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, messages, <19 attributes>}``; a missing attribute stays NaN."""
    attributes = source.options.get("attributes", list(ARMORM_ATTRIBUTES))

    def parse(row_no: int, raw: dict) -> dict:
        rec = {"id": str(row_no), "messages": json.dumps(_conversation(get_field(raw, "messages"), "messages"))}
        for name in attributes:
            value = raw.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                rec[name] = math.nan
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                rec[name] = float(value)
            else:
                raise RowError(name, f"expected a number or NaN, got {value!r}")
        return rec

    return read_parquet_source(source, parse, ["id", "split", "messages", *attributes])
