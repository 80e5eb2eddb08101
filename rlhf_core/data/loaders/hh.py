"""[WA] Anthropic/hh-rlhf reward-model pairs and first-turn PPO prompts (docs/sources.md §1.4).

- loader ``hh_rlhf``: ``{chosen, rejected}`` JSON lines (gzip) of every file matched by
  ``files.<split>``. Each raw transcript is split before its last ``\\n\\nAssistant:`` reply, so
  ``prompt + chosen`` is exactly the raw string [WA] tokenises (no chat template).
- builder ``drop_long_pairs``: drops a pair when either side is longer than ``max_length``
  tokens (special tokens included, as the seed's plain ``tokenizer(text)`` call).
- loader ``hh_first_prompt``: the ``user`` column of ``wentingzhao/anthropic-hh-first-prompt``.
- builder ``wa_ppo_prompts``: keeps queries longer than ``min_chars`` characters and cuts each to
  its first L tokens, L drawn from ``LengthSampler(min_tokens, max_tokens)``, decoded back to text.

Deviation from the seed: TRL's ``LengthSampler`` draws from numpy's global RNG; here the draws
come from ``numpy.random.default_rng(task.seed)`` so a run is reproducible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    absorb,
    get_str,
    parse_rows,
    read_json_lines,
    read_parquet_source,
    source_files,
)
from rlhf_core.data.tokenizer import load_tokenizer, token_count
from rlhf_core.data.transforms import check_options, one_input, option

REPLY_MARKER = "\n\nAssistant:"


@loader("hh_rlhf")
def load_hh_rlhf(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Preference rows ``{id, split, subset, prompt, chosen, rejected}``; each ``files`` key is a split."""
    ledger = Ledger(source.hub_id or source.path or "hh_rlhf")
    records = []
    for split in source.files:
        for path in source_files(source, split):
            part = Ledger(str(path))
            for rec in parse_rows(read_json_lines(path, part), _parse_pair, part):
                subset = path.parent.name
                records.append({"id": f"{subset}/{split}-{rec.pop('row')}", "split": split, "subset": subset, **rec})
            absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=["id", "split", "subset", "prompt", "chosen", "rejected"]))


def _parse_pair(row_no: int, obj: dict) -> dict:
    chosen, rejected = get_str(obj, "chosen"), get_str(obj, "rejected")
    cut = chosen.rfind(REPLY_MARKER)
    if cut < 0:
        raise RowError("chosen", f"no {REPLY_MARKER!r} turn")
    cut += len(REPLY_MARKER)
    prompt = chosen[:cut]
    if not rejected.startswith(prompt) or REPLY_MARKER in rejected[cut:]:
        raise RowError("rejected", "does not share the conversation before the chosen reply")
    return {"row": row_no, "prompt": prompt, "chosen": chosen[cut:], "rejected": rejected[cut:]}


@builder("drop_long_pairs")
def drop_long_pairs(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Drop pairs where ``prompt + chosen`` or ``prompt + rejected`` exceeds ``max_length`` tokens."""
    check_options(spec, {"tokenizer", "max_length"})
    tok = load_tokenizer(option(spec, "tokenizer"), builder=spec.builder)
    max_length = option(spec, "max_length", 512)
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    fits = [
        max(token_count(tok, p + c, special_tokens=True), token_count(tok, p + r, special_tokens=True)) <= max_length
        for p, c, r in zip(df["prompt"], df["chosen"], df["rejected"])
    ]
    ledger.drop("longer_than_max_length", len(df) - sum(fits))
    return ledger.result(df[fits])


@loader("hh_first_prompt")
def load_hh_first_prompt(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """First user turns ``{id, split, query}`` from the Parquet files of each ``files`` split."""
    return read_parquet_source(
        source, lambda n, obj: {"id": f"train-{n}", "query": get_str(obj, "user")}, ["id", "split", "query"]
    )


@builder("wa_ppo_prompts")
def build_ppo_prompts(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Prompt rows ``{id, split, prompt, query}``: long queries cut to 2-7 tokens."""
    check_options(spec, {"tokenizer", "min_chars", "min_tokens", "max_tokens"})
    tok = load_tokenizer(option(spec, "tokenizer"), builder=spec.builder)
    min_chars = option(spec, "min_chars", 200)
    lengths = list(range(option(spec, "min_tokens", 2), option(spec, "max_tokens", 8)))
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    long_enough = df[df["query"].str.len() > min_chars].copy()
    ledger.drop(f"query_not_longer_than_{min_chars}_chars", len(df) - len(long_enough))
    rng = np.random.default_rng(task.seed)
    long_enough["prompt"] = [
        tok.decode(tok(q, add_special_tokens=False)["input_ids"][: rng.choice(lengths)]) for q in long_enough["query"]
    ]
    return ledger.result(long_enough[["id", "split", "prompt", "query"]])
