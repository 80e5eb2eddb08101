"""[LoL] HHA: the PRO copy of Anthropic HH (``data.zip``), and its cleaning (docs/sources.md §1.2 "HHA").

- loader ``pro_hh``: JSON-lines files named in ``files`` under keys ``<split>`` or
  ``<split>/<segment>`` (``train``, ``val``, ``test/harmless_base``, ...). One row per line with
  ``prompt`` (the turns each followed by EOS, ending in ``<|assistant|>``, the OASST-RM input of
  docs/sources.md §3.2), ``chosen`` / ``rejected`` (``suffix``), their stored raw RM logits, and ``prefix``.
- builder ``pro_drop_colon_endings``: drops an example of the given splits (default train)
  when either response ends with ``:`` (checked without stripping), as ``data_cleaning.py``.
- loader ``pro_hh_bad_test_indices``: LoL-RL's ``bad_test_indices.json``, the per-segment test
  indices the GPT-4 evaluation skips (docs/sources.md §1.2, §7.3).
- builder ``pro_gpt4_eval_prompts``: the test rows the GPT-4 pairwise evaluation compares, i.e.
  every test row whose index is not in ``bad_test_indices.json`` (docs/sources.md §7.3). The reward, length
  and distinct-n evaluation uses every test row (the loader's ``test`` split).

A row's index in its segment is its 0-based line (``line - 1``), the position the seed's samples
carry after reading the file with ``readlines()``; a quarantined line keeps its number, so the
excluded indices still name the right lines.
"""

from __future__ import annotations

import json

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger, SourceError
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    absorb,
    check_number,
    check_str_list,
    get_list,
    load_json_document,
    parse_rows,
    read_json_lines,
    source_file,
)
from rlhf_core.data.transforms import check_options, one_input, option
from rlhf_core.models.load import EOS

ASSISTANT, PROMPTER = "<|assistant|>", "<|prompter|>"
COLUMNS = [
    "id",
    "split",
    "segment",
    "line",
    "prompt",
    "chosen",
    "rejected",
    "chosen_reward",
    "rejected_reward",
    "prefix",
    "meta",
]


@loader("pro_hh")
def load_pro_hh(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Every file in ``files``; the key gives ``split`` and ``segment``, ``line`` is the 1-based line."""
    ledger = Ledger(source.hub_id or source.path or "pro_hh")
    records = []
    for key in source.files:
        split, _, segment = key.partition("/")
        path = source_file(source, key)
        part = Ledger(str(path))
        for rec in parse_rows(read_json_lines(path, part), _parse_line, part):
            records.append({**rec, "id": f"{key}-{rec['line']}", "split": split, "segment": segment or split})
            # PRO's loader keeps an empty response (it trains on it); report such rows, drop none.
            part.flag("empty_response", int(not rec["chosen"].strip() or not rec["rejected"].strip()))
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=COLUMNS))


def _parse_line(row_no: int, obj: dict) -> dict:
    candidates = get_list(obj, "prefix")
    if not candidates:
        raise RowError("prefix", "no candidate prefix")
    for i, cand in enumerate(candidates):
        if not isinstance(cand, list) or not cand:
            raise RowError(f"prefix[{i}]", "expected a non-empty list of turns")
        check_str_list(cand, f"prefix[{i}]")
        if cand[-1] != ASSISTANT:
            raise RowError(f"prefix[{i}]", f"last element must be exactly {ASSISTANT!r}, got {cand[-1][:40]!r}")
        bad = [t for t in cand[:-1] if not t.startswith((PROMPTER, ASSISTANT))]
        if bad:
            raise RowError(f"prefix[{i}]", f"turn does not start with a role marker: {bad[0][:40]!r}")
        if cand != candidates[0]:
            raise RowError(f"prefix[{i}]", "candidates do not share one conversation prefix")
    chosen, rejected = check_str_list(get_list(obj, "suffix", length=2), "suffix", allow_empty=True)
    r_chosen, r_rejected = (check_number(r, f"reward[{i}]") for i, r in enumerate(get_list(obj, "reward", length=2)))
    prefix = candidates[0]
    return {
        "line": row_no,
        "prompt": "".join(turn + EOS for turn in prefix[:-1]) + ASSISTANT,
        "chosen": chosen,
        "rejected": rejected,
        "chosen_reward": r_chosen,
        "rejected_reward": r_rejected,
        "prefix": prefix,
        "meta": json.dumps(obj.get("meta"), ensure_ascii=False),
    }


@builder("pro_drop_colon_endings")
def drop_colon_endings(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Drop examples whose chosen or rejected response ends with ``:`` (option ``splits``)."""
    check_options(spec, {"splits"})
    splits = option(spec, "splits", ["train"])
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    bad = df["split"].isin(splits) & (df["chosen"].str.endswith(":") | df["rejected"].str.endswith(":"))
    ledger.drop("response_ends_with_colon", int(bad.sum()))
    return ledger.result(df[~bad])


# ----------------------------------------------------------------------------- GPT-4 evaluation prompts


@loader("pro_hh_bad_test_indices")
def load_bad_test_indices(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{segment, test_index}`` from ``{"<segment>.json": [index, ...], ...}``; each index is
    one input row, and an entry that is not such a list is one quarantined row."""
    path = source_file(source, "indices")
    doc = load_json_document(path)
    if not isinstance(doc, dict):
        raise SourceError(str(path), f"expected an object of segment file -> indices, got {type(doc).__name__}")
    ledger = Ledger(str(path))
    rows = []
    for entry_no, (key, indices) in enumerate(doc.items(), start=1):
        problem = _entry_problem(key, indices)
        if problem:
            ledger.n_input += 1
            ledger.quarantine_row(entry_no, key, problem, indices)
            continue
        ledger.n_input += len(indices)
        for i, index in enumerate(indices):
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                ledger.quarantine_row(entry_no, f"{key}[{i}]", f"expected a non-negative int, got {index!r}", index)
            else:
                rows.append({"segment": key.removesuffix(".json"), "test_index": index})
    return ledger.result(pd.DataFrame(rows, columns=["segment", "test_index"]))


def _entry_problem(key: str, indices: object) -> str | None:
    if not key.endswith(".json"):
        return "key is not a test file name '<segment>.json'"  # the seed looks segments up as '<segment>.json'
    if not isinstance(indices, list):
        return f"expected a list of test indices, got {type(indices).__name__}"
    return None


@builder("pro_gpt4_eval_prompts")
def build_gpt4_eval_prompts(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, segment, test_index, prompt, prefix}`` of the test split, minus the
    excluded indices (rule ``bad_test_index``); rows of other splits are dropped by rule ``not_test``.

    Inputs: the ``pro_hh`` table and the ``pro_hh_bad_test_indices`` table. A segment is matched
    by name: the ``test/<segment>`` key of ``files`` and the ``<segment>.json`` key of the indices.
    """
    check_options(spec, set())
    rows, bad = _input_with(inputs, spec, "prompt"), _input_with(inputs, spec, "test_index")
    ledger = Ledger(spec.builder)
    ledger.n_input = len(rows)
    test = rows[rows["split"] == "test"].assign(test_index=lambda df: df["line"] - 1)
    ledger.drop("not_test", len(rows) - len(test))
    excluded = set(zip(bad["segment"], bad["test_index"]))
    skip = pd.Series([k in excluded for k in zip(test["segment"], test["test_index"])], index=test.index, dtype=bool)
    ledger.drop("bad_test_index", int(skip.sum()))
    return ledger.result(test.loc[~skip, ["id", "split", "segment", "test_index", "prompt", "prefix"]])


def _input_with(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, column: str) -> pd.DataFrame:
    found = [df for df in inputs.values() if column in df.columns]
    if len(found) != 1:
        raise ValueError(
            f"builder {spec.builder!r} needs exactly one input with column {column!r}, got {sorted(inputs)}"
        )
    return found[0]
