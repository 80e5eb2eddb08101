"""[LoL] HHA: the PRO copy of Anthropic HH (``data.zip``), and its cleaning (SPEC 1.2 "HHA").

- loader ``pro_hh``: JSON-lines files named in ``files`` under keys ``<split>`` or
  ``<split>/<segment>`` (``train``, ``val``, ``test/harmless_base``, ...). One row per line with
  ``prompt`` (the turns each followed by EOS, ending in ``<|assistant|>``, the OASST-RM input of
  SPEC 3.2), ``chosen`` / ``rejected`` (``suffix``), their stored raw RM logits, and ``prefix``.
- builder ``pro_drop_colon_endings``: drops an example of the given splits (default train)
  when either response ends with ``:`` (checked without stripping), as ``data_cleaning.py``.
"""
from __future__ import annotations

import json

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    absorb,
    check_number,
    check_str_list,
    get_list,
    parse_rows,
    read_json_lines,
    source_file,
)
from rlhf_core.data.transforms import check_options, one_input, option

EOS = "<|endoftext|>"
ASSISTANT, PROMPTER = "<|assistant|>", "<|prompter|>"
COLUMNS = ["id", "split", "segment", "prompt", "chosen", "rejected", "chosen_reward", "rejected_reward", "prefix", "meta"]


@loader("pro_hh")
def load_pro_hh(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Every file in ``files``; the key gives ``split`` and ``segment``."""
    ledger = Ledger(source.hub_id or source.path or "pro_hh")
    records = []
    for key in source.files:
        split, _, segment = key.partition("/")
        path = source_file(source, key)
        part = Ledger(str(path))
        for rec in parse_rows(read_json_lines(path, part), _parse_line, part):
            records.append({**rec, "id": f"{key}-{rec['id']}", "split": split, "segment": segment or split})
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
    chosen, rejected = check_str_list(get_list(obj, "suffix", length=2), "suffix")
    r_chosen, r_rejected = (check_number(r, f"reward[{i}]") for i, r in enumerate(get_list(obj, "reward", length=2)))
    prefix = candidates[0]
    return {
        "id": str(row_no),
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
