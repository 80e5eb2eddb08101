"""[LoL] COMET: ATOMIC-10x train/val and ATOMIC-2020 test -> commonsense generation data (docs/sources.md §1.2).

- loader ``atomic10x``: ``ATOMIC10X.jsonl`` (head, relation, tail, split, p_valid_model). Rows of
  splits other than ``train`` / ``val`` are dropped (rule ``other_split``).
- loader ``atomic2020``: ATOMIC-2020 ``test.tsv`` (head, relation, tail; no header). An optional
  fourth column holds the COMET-critic score of the tail (this port's way of handing the test
  scores in; without it, builder option ``scorer`` names a registered scorer).
- builder ``lol_comet``: train/val rows with the stored ``p_valid_model`` as reward, val subsampled
  to ``val_size`` (seeded); test rows of the 7 relations, keeping for each (head, relation) only
  the best-scoring tail. Prompt ``<head> {head} </head> <relation> {relation} </relation> [GEN] ``.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    check_number,
    count_rows,
    get_number,
    get_str,
    parse_rows,
    read_json_lines,
    source_file,
)
from rlhf_core.data.transforms import check_options, option

RELATIONS = ("HinderedBy", "xNeed", "xWant", "xIntent", "xReact", "xAttr", "xEffect")
COLUMNS = ["id", "split", "head", "relation", "tail", "p_valid_model"]


@loader("atomic10x")
def load_atomic10x(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Triples ``{id, split, head, relation, tail, p_valid_model}`` of the train and val splits."""
    path = source_file(source, "atomic10x")
    ledger = Ledger(str(path))

    def parse(row_no: int, obj: dict) -> dict | None:
        rec = {
            "id": f"atomic10x-{row_no}",
            "split": get_str(obj, "split"),
            "head": get_str(obj, "head"),
            "relation": get_str(obj, "relation"),
            "tail": get_str(obj, "tail"),
            "p_valid_model": get_number(obj, "p_valid_model"),
        }
        if rec["split"] not in ("train", "val"):
            ledger.drop("other_split")
            return None
        return rec

    return ledger.result(pd.DataFrame(parse_rows(read_json_lines(path, ledger), parse, ledger), columns=COLUMNS))


@loader("atomic2020")
def load_atomic2020(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Test triples ``{id, split, head, relation, tail, p_valid_model}`` (score NaN when not given)."""
    path = source_file(source, "test")
    ledger = Ledger(str(path))
    with open(path, encoding="utf-8", newline="") as fh:
        lines = count_rows(ledger, list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)))

    def parse(row_no: int, cells: list[str]) -> dict:
        if len(cells) not in (3, 4):
            raise RowError("<line>", f"expected 3 or 4 tab-separated columns, got {len(cells)}")
        head, relation, tail = cells[:3]
        for name, value in (("head", head), ("relation", relation), ("tail", tail)):
            if not value.strip():
                raise RowError(name, "empty text")
        try:
            score = float(cells[3]) if len(cells) == 4 else math.nan
        except ValueError:
            raise RowError("p_valid_model", f"not a number: {cells[3]!r}") from None
        return {
            "id": f"atomic2020-{row_no}",
            "split": "test",
            "head": head,
            "relation": relation,
            "tail": tail,
            "p_valid_model": score,
        }

    return ledger.result(pd.DataFrame(parse_rows(lines, parse, ledger), columns=COLUMNS))


def comet_prompt(head: str, relation: str) -> str:
    """The COMET-distill generation prompt (note the trailing space)."""
    return f"<head> {head} </head> <relation> {relation} </relation> [GEN] "


@builder("lol_comet")
def build_comet(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, prompt, completion, score, meta}`` (score = p_valid_model).

    Options: ``relations`` (the 7), ``val_size`` (10000), ``val_seed`` (task seed), ``scorer``
    (registered scorer name for test tails without a score).
    """
    check_options(spec, {"relations", "val_size", "val_seed", "scorer"})
    relations = option(spec, "relations", list(RELATIONS))
    df = pd.concat(list(inputs.values()), ignore_index=True)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    train = df[df["split"] == "train"]
    val = df[df["split"] == "val"]
    rng = np.random.default_rng(option(spec, "val_seed", task.seed if task else 0))
    val_size = option(spec, "val_size", 10000)
    if len(val) > val_size:
        val = val.iloc[np.sort(rng.choice(len(val), size=val_size, replace=False))]
        ledger.drop("val_subsample", int((df["split"] == "val").sum()) - val_size)
    test = df[df["split"] == "test"]
    in_rel = test["relation"].isin(relations)
    ledger.drop("relation_not_used", int((~in_rel).sum()))
    test = _score(test[in_rel].copy(), option(spec, "scorer", None), spec)
    best = test.sort_values("p_valid_model", ascending=False, kind="stable").drop_duplicates(["head", "relation"])
    ledger.drop("not_best_tail", len(test) - len(best))
    out = pd.concat([train, val, best.sort_index()], ignore_index=True)
    return ledger.result(
        pd.DataFrame(
            {
                "id": out["id"],
                "split": out["split"],
                "prompt": [comet_prompt(h, r) for h, r in zip(out["head"], out["relation"])],
                "completion": out["tail"],
                "score": out["p_valid_model"].astype(float),
                "meta": [json.dumps({"relation": r}) for r in out["relation"]],
            }
        )
    )


def _score(test: pd.DataFrame, scorer_name: str | None, spec: DatasetConfig) -> pd.DataFrame:
    """Fill missing test scores with the named scorer (the COMET critic in real runs)."""
    missing = test["p_valid_model"].isna()
    if missing.any():
        if scorer_name is None:
            raise ValueError(
                f"builder {spec.builder!r}: {int(missing.sum())} test tails have no score and no 'scorer' option"
            )
        from rlhf_core.rewards.base import build_scorer

        sub = test[missing]
        prompts = [comet_prompt(h, r) for h, r in zip(sub["head"], sub["relation"])]
        test.loc[missing, "p_valid_model"] = build_scorer(scorer_name)(prompts, list(sub["tail"]))
    for value in test["p_valid_model"]:
        check_number(value, "p_valid_model")
    return test
