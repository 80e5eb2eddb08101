"""[CRS] OpenAssistant SFT threads and the committed evaluation prompts.

- builder ``crs_sft_threads``: every thread that ends at a leaf, a trailing prompter leaf popped
  (docs/sources.md §1.3 "SFT", §4). Its trees come from a second ``oasst_trees`` source with the SFT
  config's 20 languages, since the tree-level split is drawn over the kept trees.
- loader ``crs_eval_prompts``: the committed evaluation prompt files ``data/eval_*.json``
  (docs/sources.md §7.4).

Deviations from the seed: a non-alternating SFT thread is quarantined (the seed ``assert``s and
stops); SFT rows use the ChatML of docs/sources.md §1.3 (see ``oasst.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.loaders.oasst import QUERY_SUFFIX, ROLES, _trees_input, render_chatml
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, absorb, get_str, json_list_files, parse_rows
from rlhf_core.data.transforms import check_options, option

# ----------------------------------------------------------------------------- SFT threads


@builder("crs_sft_threads")
def build_sft_threads(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """SFT rows ``{id, split, lang, prompt, completion, messages}``; one input unit per leaf.

    A thread is kept as the seed's SFT leaf filter keeps it: more than the prompt, a prompter leaf
    only when it is its parent's first reply (then popped, so the thread ends on the assistant), no
    deleted or synthetic message, and with option ``top_k`` (default 1, the seed's ``sft`` config;
    null turns it off) no assistant message ranked >= top_k or unranked beside siblings.
    ``prompt + completion`` is the thread in ChatML; ``messages`` holds the same turns as
    ``{role, content}``, for a trainer that masks every assistant turn as the seed's collator does.
    """
    check_options(spec, {"top_k"})
    top_k = option(spec, "top_k", 1)
    trees = _trees_input(inputs, spec)
    ledger = Ledger(spec.builder)
    out = []
    for row_no, (split, lang, tree) in enumerate(zip(trees["split"], trees["lang"], trees["tree"]), start=1):
        for thread in _leaf_threads(json.loads(tree)):
            ledger.n_input += 1
            rule = _sft_drop_rule(thread, top_k)
            if rule:
                ledger.drop(rule)
                continue
            if thread[-1]["role"] == "prompter":
                thread = thread[:-1]
            if any(m["role"] != ("prompter", "assistant")[i % 2] for i, m in enumerate(thread)):
                reason = f"thread ending at {thread[-1]['message_id']}: roles do not alternate prompter/assistant"
                ledger.quarantine_row(row_no, "role", reason, [m["text"] for m in thread])
                continue
            out.append(_sft_row(thread, split, lang))
    return ledger.result(pd.DataFrame(out, columns=["id", "split", "lang", "prompt", "completion", "messages"]))


def _sft_row(thread: list[dict], split: str, lang: str) -> dict:
    texts = [m["text"] for m in thread]
    # prompt + completion is the whole thread's ChatML, so the completion ends with its <|im_end|>
    return {
        "id": thread[-1]["message_id"],
        "split": split,
        "lang": lang,
        "prompt": render_chatml(texts[:-1]) + QUERY_SUFFIX,
        "completion": f"{texts[-1]}<|im_end|>\n",
        "messages": [{"role": ROLES[m["role"]], "content": m["text"]} for m in thread],
    }


def _leaf_threads(tree: dict) -> Iterator[list[dict]]:
    """Every root-to-leaf thread, depth first in reply order (as ``visit_threads_depth_first``)."""
    stack = [[tree]]
    while stack:
        thread = stack.pop()
        replies = thread[-1].get("replies") or []
        if not replies:
            yield thread
        stack += [thread + [r] for r in reversed(replies)]


def _sft_drop_rule(thread: list[dict], top_k: int | None) -> str | None:
    """The rule by which the seed's SFT leaf filter rejects a leaf thread, or None to keep it."""
    if len(thread) == 1:
        return "prompt_without_reply"
    if thread[-1]["role"] == "prompter" and thread[-2]["replies"][0] is not thread[-1]:
        return "prompter_leaf_not_first_reply"  # the parent's thread is taken once, via its first reply
    if any(m.get("deleted") or m.get("synthetic") for m in thread):
        return "deleted_or_synthetic"
    if top_k is not None and any(_outside_top_k(parent, msg, top_k) for parent, msg in zip(thread, thread[1:])):
        return "not_top_k"
    return None


def _outside_top_k(parent: dict, msg: dict, top_k: int) -> bool:
    if msg["role"] != "assistant":
        return False
    if msg.get("rank") is None:
        return len(parent["replies"]) > 1  # an unranked reply passes only when it is the only reply
    return msg["rank"] >= top_k


# ----------------------------------------------------------------------------- evaluation prompts


@loader("crs_eval_prompts")
def load_eval_prompts(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Prompt rows ``{id, split, dataset, prompt}`` of the committed ``data/eval_*.json`` files.

    Each file is a JSON list of ``{"instruction": ChatML query, "dataset": its source}``. ``split``
    is the ``files`` key (``final``, ``hp_tuning``, ``humaneval``), so an evaluation picks a file by
    its split; ``id`` is ``<split>-<0-based index>``. The files are used as committed, the prompts
    the study used (docs/sources.md §1.3); they are not re-sampled from alpaca_eval.
    """
    ledger = Ledger(source.hub_id or source.path or "crs_eval_prompts")
    records = []
    for split, part, rows in json_list_files(source, "prompts"):
        parsed = parse_rows(rows, _parse_eval_prompt, part)
        records += [{**rec, "id": f"{split}-{rec['id']}", "split": split} for rec in parsed]
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=["id", "split", "dataset", "prompt"]))


def _parse_eval_prompt(row_no: int, item: dict) -> dict:
    prompt = get_str(item, "instruction")
    if not (prompt.startswith("<|im_start|>user\n") and prompt.endswith(QUERY_SUFFIX)):
        raise RowError("instruction", "not a ChatML query '<|im_start|>user\\n...<|im_start|>assistant\\n'")
    return {"id": str(row_no - 1), "dataset": get_str(item, "dataset"), "prompt": prompt}
