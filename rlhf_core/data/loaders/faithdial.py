"""[LoL] Knowledge-grounded dialogue: Wizard of Wikipedia and FaithDial (docs/sources.md §1.2 "WoW / FaithDial").

- loader ``wow_dialogs``: WoW episode files (JSON lists), one ``files`` key per split. Every
  Wizard turn with a ``checked_sentence`` other than ``no_passages_used`` and a non-empty history
  (all earlier utterances) becomes a row; each dialog turn is one input unit.
- loader ``faithdial_dialogs``: FaithDial files (JSON lists of dialogues with ``utterances`` holding
  ``history``, ``knowledge``, ``response``); each utterance is one input unit.
- builder ``lol_knowledge_dialog``: ``prompt = Knowledge: {knowledge}<eos>{history joined by <eos>}<eos>``,
  ``completion = response.strip() + <eos>``; the oldest utterances are dropped while the history
  is longer than ``max_history_tokens`` DialoGPT tokens. Option ``splits`` maps each output split
  to ``input/split`` parts (e.g. faithdial_wow train = WoW train + FaithDial train, shuffled).

Deviation: the seed trims histories batch-wise ("while the padded batch is longer than 400,
drop the oldest utterance of every example over 400"); per example this is the same rule.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger, SourceError
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, absorb, check_str_list, get_list, get_str, load_json_document, source_file
from rlhf_core.data.tokenizer import load_tokenizer, token_count
from rlhf_core.data.transforms import check_options, option
from rlhf_core.models.load import EOS

NO_PASSAGE = "no_passages_used"
COLUMNS = ["id", "split", "knowledge", "history", "response"]


def _load_list(path) -> list:
    data = load_json_document(path)
    if not isinstance(data, list):
        raise SourceError(str(path), f"expected a JSON list, got {type(data).__name__}")
    return data


def _turns(ledger: Ledger, row_no: int, raw, key: str, parse_unit) -> list[dict]:
    """Parse one episode/dialogue; an unusable one is one quarantined unit."""
    try:
        units = get_list(raw, key) if isinstance(raw, dict) else None
        if units is None:
            raise RowError("<row>", f"expected an object, got {type(raw).__name__}")
    except RowError as err:
        ledger.n_input += 1
        ledger.quarantine_row(row_no, err.field, err.reason, raw)
        return []
    out = []
    for j, unit in enumerate(units):
        ledger.n_input += 1
        try:
            rec = parse_unit(j, unit, units)
        except RowError as err:
            ledger.quarantine_row(row_no, f"{key}[{j}].{err.field}", err.reason, unit)
            continue
        if isinstance(rec, str):
            ledger.drop(rec)  # the unit parser named the rule that drops this unit
        else:
            out.append({**rec, "id": f"{row_no}-{j}"})
    return out


def _load_dialogs(source: SourceConfig, key: str, parse_unit) -> CleanResult:
    ledger = Ledger(source.hub_id or source.path or source.loader)
    records = []
    for split in source.files:
        path = source_file(source, split)
        part = Ledger(str(path))
        for row_no, raw in enumerate(_load_list(path), start=1):
            records += [
                {**r, "id": f"{split}-{r['id']}", "split": split} for r in _turns(part, row_no, raw, key, parse_unit)
            ]
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=COLUMNS))


@loader("wow_dialogs")
def load_wow(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Wizard turns ``{id, split, knowledge, history, response}``."""

    def parse(j: int, turn: dict, dialog: list) -> dict | str:
        speaker, text = get_str(turn, "speaker"), get_str(turn, "text")
        if "Wizard" not in speaker:
            return "not_wizard_turn"
        checked = turn.get("checked_sentence") or {}
        if not isinstance(checked, dict):
            raise RowError("checked_sentence", f"expected an object, got {type(checked).__name__}")
        knowledge = next(iter(checked.values()), "")
        if not knowledge or knowledge == NO_PASSAGE:
            return "no_checked_sentence"
        if j == 0:
            return "empty_history"
        return {"knowledge": knowledge, "history": [u.get("text", "") for u in dialog[:j]], "response": text}

    return _load_dialogs(source, "dialog", parse)


@loader("faithdial_dialogs")
def load_faithdial(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """FaithDial utterances ``{id, split, knowledge, history, response}``."""

    def parse(j: int, utt: dict, dialog: list) -> dict:
        history = check_str_list(get_list(utt, "history"), "history")
        if not history:
            raise RowError("history", "empty history")
        return {"knowledge": get_str(utt, "knowledge"), "history": history, "response": get_str(utt, "response")}

    return _load_dialogs(source, "utterances", parse)


@builder("lol_knowledge_dialog")
def build_knowledge_dialog(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rows ``{id, split, prompt, completion, meta}``.

    Options: ``splits`` ({out_split: ["input/split", ...]}), ``tokenizer``, ``max_history_tokens``
    (400), ``shuffle_seed`` (task seed; shuffles an output split made of several parts).
    """
    check_options(spec, {"splits", "tokenizer", "max_history_tokens", "shuffle_seed"})
    tok = load_tokenizer(option(spec, "tokenizer"), builder=spec.builder)
    max_tokens = option(spec, "max_history_tokens", 400)
    rng = np.random.default_rng(option(spec, "shuffle_seed", task.seed if task else 0))
    ledger = Ledger(spec.builder)
    ledger.n_input = sum(len(df) for df in inputs.values())
    parts, used = [], set()
    for out_split, sources in option(spec, "splits").items():
        frames = []
        for ref in sources:
            name, _, split = ref.partition("/")
            if name not in inputs:
                raise ValueError(f"builder {spec.builder!r}: splits.{out_split} names unknown input {name!r}")
            df = inputs[name]
            frames.append(df[df["split"] == split].assign(id=lambda d, n=name: n + "/" + d["id"]))
            used.add((name, split))
        merged = pd.concat(frames, ignore_index=True)
        if len(frames) > 1:
            merged = merged.iloc[rng.permutation(len(merged))]
        parts.append(merged.assign(split=out_split))
    unused = sum(len(df[~df["split"].isin([s for n, s in used if n == name])]) for name, df in inputs.items())
    if unused:
        ledger.drop("split_not_used", unused)
    out = []
    for row in pd.concat(parts, ignore_index=True).itertuples(index=False):
        history = list(row.history)
        while len(history) > 1 and token_count(tok, EOS.join(history) + EOS) > max_tokens:
            history = history[1:]  # drop the oldest utterance
        out.append(
            {
                "id": row.id,
                "split": row.split,
                "completion": row.response.strip() + EOS,
                "prompt": f"Knowledge: {row.knowledge}{EOS}{EOS.join(history)}{EOS}",
                "meta": json.dumps({"knowledge": row.knowledge, "history_dropped": len(row.history) - len(history)}),
            }
        )
    return ledger.result(pd.DataFrame(out, columns=["id", "split", "prompt", "completion", "meta"]))
