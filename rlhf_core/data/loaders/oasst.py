"""[CRS] OpenAssistant oasst1 message trees -> ranking-RM, absolute-RM and RL-prompt tables.

- loader ``oasst_trees``: the trees export (``*.trees.jsonl.gz``). Keeps a tree when it is
  ``ready_for_export``, its prompt has a positive review result and its language is in option
  ``langs``; then splits the kept trees 95/5 with ``torch.utils.data.random_split`` and generator
  seed 90 (docs/sources.md §1.3), so messages of one tree never cross splits.
- builder ``crs_ranking``: thread prefixes ending on a prompter message with >= 2 ranked
  assistant replies; replies sorted by rank (best first), at most ``max_replies`` (docs/sources.md §2.3).
- loader ``crs_augmented``: ``rm_data_augment/rm_augmented.csv`` (message, reply, score).
- builder ``crs_absolute``: one row per (prefix, ranked reply) whose reply has every label;
  score = sum(label value x weight); negative scores dropped; the train split is rebalanced and
  the augmented rows appended (docs/sources.md §2.3).
- builder ``crs_rl_prompts``: every prefix ending on a prompter message, as a ChatML query that
  ends with ``<|im_start|>assistant\\n``; queries over ``max_query_tokens`` dropped; the train
  split shuffled (seed 90) and cut to ``train_fraction`` = 37.5% (docs/sources.md §1.3).
- builder ``crs_sft_threads`` and loader ``crs_eval_prompts``: in ``oasst_sft.py``.

A thread that contains a deleted or synthetic message is never used.

Deviations from the seed: the augmented CSV's ``message`` column is a stringified Python list;
the seed never parses it (its formatter iterates over characters, docs/sources.md §10.9), here it is parsed
with ``ast.literal_eval``. The RL shuffle is ``numpy.random.default_rng(90).permutation`` (what a
Hugging Face ``Dataset.shuffle(seed=90)`` draws). A rebalancing bin smaller than its draw count is
kept whole (the seed's ``sample`` would raise). A non-alternating SFT thread is quarantined (the
seed ``assert``s and stops). SFT rows use the ChatML of docs/sources.md §1.3, like every other table here and
the baseline the final runs start from; the repo's own ``sft_dataset.py`` wrote
``<|prompter|>``/``<|assistant|>`` + EOS turns (``messages`` keeps the turns format-free).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    count_rows,
    get_field,
    get_str,
    parse_rows,
    read_json_lines,
    source_file,
)
from rlhf_core.data.tokenizer import load_tokenizer, token_count
from rlhf_core.data.transforms import check_options, option

ROLES = {"prompter": "user", "assistant": "assistant"}
QUERY_SUFFIX = "<|im_start|>assistant\n"
ABS_LABELS = ("violence", "creativity", "helpfulness", "humor", "toxicity", "quality")


# ----------------------------------------------------------------------------- trees


@loader("oasst_trees")
def load_oasst_trees(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Kept trees ``{id, split, lang, tree}`` (``tree``: the prompt node as JSON).

    Options: ``langs`` (list, default ``[en, es, de, fr]``), ``val_split`` (0.05), ``split_seed`` (90).
    """
    import torch
    from torch.utils.data import random_split

    langs = source.options.get("langs", ["en", "es", "de", "fr"])
    val_split = source.options.get("val_split", 0.05)
    path = source_file(source, "trees")
    ledger = Ledger(str(path))
    trees = parse_rows(read_json_lines(path, ledger), _parse_tree, ledger)
    kept = []
    for tree in trees:
        prompt = tree["prompt"]
        if tree["tree_state"] != "ready_for_export":
            ledger.drop("tree_not_ready_for_export")
        elif not prompt.get("review_result"):
            ledger.drop("prompt_not_reviewed")
        elif prompt.get("lang") not in langs:
            ledger.drop("language_not_selected")
        else:
            kept.append(tree)
    generator = torch.Generator().manual_seed(source.options.get("split_seed", 90))
    train_idx, val_idx = random_split(range(len(kept)), [1.0 - val_split, val_split], generator=generator)
    split_of = {**{i: "train" for i in train_idx}, **{i: "val" for i in val_idx}}
    records = [
        {
            "id": t["message_tree_id"],
            "split": split_of[i],
            "lang": t["prompt"]["lang"],
            "tree": json.dumps(t["prompt"], ensure_ascii=False),
        }
        for i, t in enumerate(kept)
    ]
    return ledger.result(pd.DataFrame(records, columns=["id", "split", "lang", "tree"]))


def _parse_tree(row_no: int, obj: dict) -> dict:
    tree_id = get_str(obj, "message_tree_id")
    state = get_str(obj, "tree_state")
    prompt = get_field(obj, "prompt")
    _check_message(prompt, "prompt")
    return {"message_tree_id": tree_id, "tree_state": state, "prompt": prompt}


def _check_message(msg: dict, where: str) -> None:
    if not isinstance(msg, dict):
        raise RowError(where, f"expected a message object, got {type(msg).__name__}")
    role = msg.get("role")
    if role not in ROLES:
        raise RowError(f"{where}.role", f"unknown role {role!r}")
    if not isinstance(msg.get("text"), str) or (not msg["text"].strip() and not msg.get("deleted")):
        raise RowError(f"{where}.text", "missing or empty text")
    rank = msg.get("rank")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool)):
        raise RowError(f"{where}.rank", f"expected an int or null, got {rank!r}")
    for name, label in (msg.get("labels") or {}).items():
        if not isinstance(label, dict) or not isinstance(label.get("value"), (int, float)):
            raise RowError(f"{where}.labels.{name}", f"expected {{value: number, count: int}}, got {label!r}")
    for i, reply in enumerate(msg.get("replies") or []):
        _check_message(reply, f"{where}.replies[{i}]")


def _prompter_threads(tree: dict) -> Iterator[list[dict]]:
    """Every thread (root to message) that ends on a prompter message and has no deleted or
    synthetic message, depth first."""
    stack = [[tree]]
    while stack:
        thread = stack.pop()
        if thread[-1].get("deleted") or thread[-1].get("synthetic"):
            continue  # every thread through this message is excluded
        if thread[-1]["role"] == "prompter":
            yield thread
        stack += [thread + [r] for r in reversed(thread[-1].get("replies") or [])]


def render_chatml(texts: list[str]) -> str:
    """Alternating user/assistant turns (starting with the user) in the CRS ChatML format."""
    roles = ("user", "assistant")
    return "".join(f"<|im_start|>{roles[i % 2]}\n{t}<|im_end|>\n" for i, t in enumerate(texts))


def _ranked_replies(msg: dict) -> list[dict]:
    """Ranked assistant replies, best first; a deleted or synthetic reply would make the
    (prefix, reply) thread one that is never used."""
    replies = [
        r
        for r in msg.get("replies") or []
        if r["role"] == "assistant" and r.get("rank") is not None and not (r.get("deleted") or r.get("synthetic"))
    ]
    return sorted(replies, key=lambda r: r["rank"])


def _rm_threads(df: pd.DataFrame, ledger: Ledger) -> Iterator[tuple[str, list[dict], list[dict]]]:
    """``(split, thread, ranked replies)`` of the RM-mode threads: a prompter message with at least
    two ranked replies. Each prompter thread is one input unit of the ledger."""
    for split, thread in _threads_by_split(df):
        ledger.n_input += 1
        replies = _ranked_replies(thread[-1])
        if len(replies) < 2:
            ledger.drop("fewer_than_2_ranked_replies")
            continue
        yield split, thread, replies


def _threads_by_split(df: pd.DataFrame) -> Iterator[tuple[str, list[dict]]]:
    for split, tree in zip(df["split"], df["tree"]):
        for thread in _prompter_threads(json.loads(tree)):
            yield split, thread


def _trees_input(inputs: dict[str, pd.DataFrame], spec: DatasetConfig) -> pd.DataFrame:
    trees = [df for df in inputs.values() if "tree" in df.columns]
    if len(trees) != 1:
        raise ValueError(f"builder {spec.builder!r} needs exactly one oasst_trees input, got {sorted(inputs)}")
    return trees[0]


# ----------------------------------------------------------------------------- ranking RM


@builder("crs_ranking")
def build_ranking(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Ranked rows ``{id, split, prompt, completions, prefix}``; one input unit per prompter thread."""
    check_options(spec, {"max_replies"})
    max_replies = option(spec, "max_replies", 4)
    ledger = Ledger(spec.builder)
    out = []
    for split, thread, replies in _rm_threads(_trees_input(inputs, spec), ledger):
        prefix = [m["text"] for m in thread]
        out.append(
            {
                "id": thread[-1]["message_id"],
                "split": split,
                "prompt": render_chatml(prefix),
                "completions": [r["text"] for r in replies[:max_replies]],
                "prefix": prefix,
            }
        )
    return ledger.result(pd.DataFrame(out, columns=["id", "split", "prompt", "completions", "prefix"]))


# ----------------------------------------------------------------------------- absolute RM


@loader("crs_augmented")
def load_augmented(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Paraphrased low-score replies ``{id, prefix, reply, score}`` from ``rm_augmented.csv``."""
    path = source_file(source, "augmented")
    ledger = Ledger(str(path))
    rows = count_rows(ledger, pd.read_csv(path, keep_default_na=False).to_dict("records"))
    # CSV row numbers: the header is line 1.
    rows = [(n + 1, raw) for n, raw in rows]
    out = parse_rows(rows, _parse_augmented, ledger)
    return ledger.result(pd.DataFrame(out, columns=["id", "prefix", "reply", "score"]))


def _parse_augmented(row_no: int, raw: dict) -> dict:
    text = get_str(raw, "message")
    try:
        prefix = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise RowError("message", "not a Python list literal") from None
    if not isinstance(prefix, list) or not prefix or not all(isinstance(t, str) for t in prefix):
        raise RowError("message", "expected a non-empty list of strings")
    try:
        score = float(get_field(raw, "score"))
    except (TypeError, ValueError):
        raise RowError("score", f"not a number: {raw['score']!r}") from None
    if not 0.0 <= score <= 1.0:
        raise RowError("score", f"outside [0, 1]: {score}")
    return {"id": f"augmented-{row_no}", "prefix": prefix, "reply": get_str(raw, "reply"), "score": score}


@builder("crs_absolute")
def build_absolute(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Rated rows ``{id, split, prompt, completion, score, prefix, source}``; input units are the
    prompter threads without two ranked replies plus the ranked replies of the others.

    Options: ``label_weights`` (default quality 1), ``oversample_threshold`` (0.4), ``high_threshold``
    (0.9), ``bin_edges`` ([0.4, 0.5, 0.6, 0.7, 0.8, 0.9]), ``per_bin`` (1600), ``random_state`` (123).
    Inputs: the trees, and optionally the augmented table (appended to train after rebalancing).
    """
    check_options(
        spec, {"label_weights", "oversample_threshold", "high_threshold", "bin_edges", "per_bin", "random_state"}
    )
    weights = option(spec, "label_weights", {"quality": 1.0})
    unknown = sorted(set(weights) - set(ABS_LABELS))
    if unknown or abs(sum(abs(w) for w in weights.values()) - 1.0) > 1e-9:
        raise ValueError(
            f"builder {spec.builder!r}: label_weights must use {ABS_LABELS} and sum to 1 in absolute value"
        )
    ledger = Ledger(spec.builder)
    rows = []
    for split, thread, replies in _rm_threads(_trees_input(inputs, spec), ledger):
        prefix = [m["text"] for m in thread]
        ledger.n_input += len(replies) - 1  # the thread's unit becomes one unit per ranked reply
        for reply in replies:
            labels = reply.get("labels") or {}
            if any(labels.get(name) is None for name in ABS_LABELS):
                ledger.drop("missing_label")
                continue
            score = sum(labels[name]["value"] * weights.get(name, 0.0) for name in ABS_LABELS)
            if score < 0:
                ledger.drop("negative_score")
                continue
            rows.append(
                {
                    "id": reply["message_id"],
                    "split": split,
                    "prompt": render_chatml(prefix),
                    "completion": reply["text"],
                    "score": float(score),
                    "prefix": prefix,
                    "source": "oasst",
                }
            )
    df = pd.DataFrame(rows, columns=["id", "split", "prompt", "completion", "score", "prefix", "source"])
    train = _rebalance(df[df["split"] == "train"], spec, ledger)
    parts = [train, *_augmented_rows(inputs, ledger), df[df["split"] != "train"]]
    return ledger.result(pd.concat(parts, ignore_index=True))


def _rebalance(train: pd.DataFrame, spec: DatasetConfig, ledger: Ledger) -> pd.DataFrame:
    """Keep every low (<= threshold) and high (>= high) score; draw ``per_bin`` from each middle bin."""
    low_cut = option(spec, "oversample_threshold", 0.4)
    high_cut = option(spec, "high_threshold", 0.9)
    edges = option(spec, "bin_edges", [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    per_bin = option(spec, "per_bin", 1600)
    seed = option(spec, "random_state", 123)
    parts = [train[train["score"] <= low_cut], train[train["score"] >= high_cut]]
    for lo, hi in zip(edges, edges[1:]):
        in_bin = train[(train["score"] > lo) & (train["score"] <= hi) & (train["score"] < high_cut)]
        drawn = in_bin.sample(n=min(per_bin, len(in_bin)), replace=False, random_state=seed)
        if len(drawn) < len(in_bin):
            ledger.drop("rebalance_not_drawn", len(in_bin) - len(drawn))
        parts.append(drawn)
    return pd.concat(parts).sample(frac=1, random_state=seed)


def _augmented_rows(inputs: dict[str, pd.DataFrame], ledger: Ledger) -> list[pd.DataFrame]:
    aug = [df for df in inputs.values() if "reply" in df.columns]
    if not aug:
        return []
    (df,) = aug
    ledger.n_input += len(df)
    return [
        pd.DataFrame(
            {
                "id": df["id"],
                "split": "train",
                "prompt": [render_chatml(list(p)) for p in df["prefix"]],
                "completion": df["reply"],
                "score": df["score"].astype(float),
                "prefix": df["prefix"],
                "source": "augmented",
            }
        )
    ]


# ----------------------------------------------------------------------------- RL prompts


@builder("crs_rl_prompts")
def build_rl_prompts(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Prompt rows ``{id, split, prompt}``; one input unit per prompter thread.

    Options: ``tokenizer``, ``max_query_tokens`` (1024), ``train_fraction`` (0.375), ``shuffle_seed`` (90).
    """
    check_options(spec, {"tokenizer", "max_query_tokens", "train_fraction", "shuffle_seed"})
    tok = load_tokenizer(option(spec, "tokenizer"), builder=spec.builder)
    max_tokens = option(spec, "max_query_tokens", 1024)
    ledger = Ledger(spec.builder)
    rows = []
    for split, thread in _threads_by_split(_trees_input(inputs, spec)):
        ledger.n_input += 1
        query = render_chatml([m["text"] for m in thread]) + QUERY_SUFFIX
        if token_count(tok, query) > max_tokens:
            ledger.drop("query_too_long")
            continue
        rows.append({"id": thread[-1]["message_id"], "split": split, "prompt": query})
    df = pd.DataFrame(rows, columns=["id", "split", "prompt"])
    train = df[df["split"] == "train"].reset_index(drop=True)
    order = np.random.default_rng(option(spec, "shuffle_seed", 90)).permutation(len(train))
    n_keep = int(len(train) * option(spec, "train_fraction", 0.375))
    ledger.drop("rl_train_subset", len(train) - n_keep)
    return ledger.result(pd.concat([train.iloc[order[:n_keep]], df[df["split"] != "train"]], ignore_index=True))
