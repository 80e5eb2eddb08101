"""[LoL] Reddit comment scores (Kaggle) -> reddit_pos / reddit_neg generation data (docs/sources.md §1.2).

- loader ``reddit_comments``: ``comments_positive.csv`` and ``comments_negative.csv`` (``files``
  keys ``positive`` / ``negative``). Rows whose ``parent_text`` or ``text`` is NaN are dropped
  (rule ``nan_text``); a non-numeric score is quarantined.
- builder ``lol_reddit``: per polarity, sample ``sample_size`` rows (random_state 901), normalise
  whitespace, drop parents or comments over ``max_words`` words, replace URLs with ``<URL>``, drop
  examples whose ``parent + eos + text + eos`` exceeds ``max_tokens`` DialoGPT tokens, then the
  first ``test_size`` rows go to test, the next ``val_size`` to val, the rest to train.
  ``prompt`` = parent + EOS, ``completion`` = text + EOS (the seed's ``prompt_or_input_text`` and
  ``references``), ``meta`` = {score, parent_score}.

The URL pattern (``http(s)://`` or ``www.`` up to whitespace) is this port's choice: the exact
regex of the seed was not recorded (docs/sources.md §1.2).
"""

from __future__ import annotations

import json
import re

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, absorb, check_number, count_rows, parse_rows, source_file
from rlhf_core.data.tokenizer import load_tokenizer, token_count
from rlhf_core.data.transforms import check_options, normalize_ws, one_input, option
from rlhf_core.models.load import EOS

URL = re.compile(r"(?:https?://|www\.)\S+")
COLUMNS = ["id", "polarity", "parent", "text", "score", "parent_score"]


@loader("reddit_comments")
def load_reddit(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Comment rows ``{id, polarity, parent, text, score, parent_score}``."""
    ledger = Ledger(source.path or "reddit_comments")
    records = []
    for polarity in source.files:
        path = source_file(source, polarity)
        part = Ledger(str(path))
        rows = [(n + 1, raw) for n, raw in count_rows(part, pd.read_csv(path).to_dict("records"))]  # header = line 1

        def parse(row_no: int, raw: dict, part=part, polarity=polarity) -> dict | None:
            if any(not isinstance(raw.get(c), str) for c in ("parent_text", "text")):
                if all(c in raw for c in ("parent_text", "text")) and any(
                    pd.isna(raw[c]) for c in ("parent_text", "text")
                ):
                    part.drop("nan_text")
                    return None
                raise RowError("parent_text/text", "missing or not text")
            return {
                "id": f"{polarity}-{raw.get('id', row_no)}",
                "polarity": polarity,
                "parent": raw["parent_text"],
                "text": raw["text"],
                "score": _csv_number(raw, "score"),
                "parent_score": _csv_number(raw, "parent_score"),
            }

        records += parse_rows(rows, parse, part)
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=COLUMNS))


def _csv_number(raw: dict, name: str) -> float:
    # One bad cell makes pandas read the whole column as text, so numbers may arrive as strings.
    try:
        return check_number(float(raw.get(name)), name)
    except (TypeError, ValueError):
        raise RowError(name, f"not a number: {raw.get(name)!r}") from None


@builder("lol_reddit")
def build_reddit(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, polarity, prompt, completion, meta}``."""
    check_options(spec, {"sample_size", "sample_seed", "max_words", "tokenizer", "max_tokens", "test_size", "val_size"})
    tok = load_tokenizer(option(spec, "tokenizer"), builder=spec.builder)
    max_words, max_tokens = option(spec, "max_words", 100), option(spec, "max_tokens", 300)
    test_size, val_size = option(spec, "test_size", 1000), option(spec, "val_size", 1000)
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    parts = []
    for polarity, rows in df.groupby("polarity", sort=False):
        sampled = rows.sample(
            n=min(option(spec, "sample_size", 102000), len(rows)), random_state=option(spec, "sample_seed", 901)
        )
        ledger.drop("not_sampled", len(rows) - len(sampled))
        kept = []
        for r in sampled.itertuples(index=False):
            parent, text = normalize_ws(r.parent), normalize_ws(r.text)
            if len(parent.split()) > max_words or len(text.split()) > max_words:
                ledger.drop("over_max_words")
                continue
            parent, text = URL.sub("<URL>", parent), URL.sub("<URL>", text)
            if token_count(tok, parent + EOS + text + EOS) > max_tokens:
                ledger.drop("over_max_tokens")
                continue
            kept.append(
                {
                    "id": r.id,
                    "polarity": polarity,
                    "prompt": parent + EOS,
                    "completion": text + EOS,
                    "meta": json.dumps({"score": r.score, "parent_score": r.parent_score}),
                }
            )
        splits = ["test"] * test_size + ["val"] * val_size
        parts.append(
            pd.DataFrame([{**k, "split": splits[i] if i < len(splits) else "train"} for i, k in enumerate(kept)])
        )
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return ledger.result(out.reindex(columns=["id", "split", "polarity", "prompt", "completion", "meta"]))
