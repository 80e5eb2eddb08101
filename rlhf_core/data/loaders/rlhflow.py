"""[RF] RLHFlow preference data: standard-format pairs, pair-PM files, ArmoRM objectives and
embeddings, RewardBench evaluation pairs.

- loader ``rlhflow_pairs``: Parquet files with ``chosen`` / ``rejected`` conversations (lists of
  ``{role, content}``), stored as JSON strings (docs/sources.md §1.5).
- builder ``pair_pm``: the pairwise-preference-model SFT rows of ``process_pair_data.py``
  (docs/sources.md §2.4): filters, plain-template context, the chosen answer at a random position, then all
  inputs concatenated and shuffled with seed 42.
- builder ``bt_pairs``: the Bradley-Terry RM's pairs, the shared context and the two final answers
  (docs/sources.md §5.5), all inputs concatenated and shuffled with seed 42.
- loader ``armorm_multi_objective``: ``messages`` plus the 19 attribute columns, NaN where an
  attribute is missing (docs/sources.md §1.5, §2.5 stage 1 labels).
- builders ``armorm_objective_embeddings`` / ``armorm_pair_embeddings``: ArmoRM stage-1 and
  stage-2 backbone embeddings (docs/sources.md §2.5); the model code is in ``rlhf_core.data.armo_embeddings``.
- loader ``reward_bench``: the RewardBench ``filtered`` split as prompt/chosen/rejected pairs with
  their ``subset`` and scoring ``section`` (docs/sources.md §7.5; scoring in ``rlhf_core.eval.reward_bench``).

Deviation from the seed: the position of the chosen answer is drawn from numpy's unseeded global
RNG in the seed; here from ``numpy.random.default_rng(task.seed)``, so a run is reproducible. The
seed-42 shuffle is ``numpy.random.default_rng(42).permutation`` (what ``Dataset.shuffle(seed=42)`` draws).
Deviation: the ArmoRM embeddings are float32 list columns of a Parquet table rather than the seed's
safetensors files, so they go through the artifact store like every other table.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.chat import conversation_prompt, pair_pm_message, plain_context
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import RowError, get_field, get_str, read_parquet_source
from rlhf_core.data.transforms import check_options, one_input, option
from rlhf_core.eval.reward_bench import SECTION_OF

ARMORM_ATTRIBUTES = (
    "helpsteer-helpfulness",
    "helpsteer-correctness",
    "helpsteer-coherence",
    "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness",
    "ultrafeedback-honesty",
    "ultrafeedback-helpfulness",
    "beavertails-is_safe",
    "prometheus-score",
    "argilla-overall_quality",
    "argilla-judge_lm",
    "code-complexity",
    "code-style",
    "code-explanation",
    "code-instruction-following",
    "code-readability",
)


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
        return {
            "id": f"{origin}-{row_no}",
            "origin": origin,
            "chosen": json.dumps(chosen, ensure_ascii=False),
            "rejected": json.dumps(rejected, ensure_ascii=False),
        }

    return read_parquet_source(source, parse, ["id", "split", "origin", "chosen", "rejected"])


@builder("pair_pm")
def build_pair_pm(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Prompt-completion rows ``{id, split, prompt, completion}``: the user message
    ``[CONTEXT] ... [RESPONSE A] ... [RESPONSE B] ... \\n`` and the answer ``A`` or ``B``.

    Options: ``shuffle_seed`` (42).
    """
    check_options(spec, {"shuffle_seed"})
    df = pd.concat(list(inputs.values()), ignore_index=True)
    ledger = Ledger(spec.builder, n_input=len(df))
    rng = np.random.default_rng(task.seed)
    out = []
    for row in df.itertuples(index=False):
        chosen, rejected = json.loads(row.chosen), json.loads(row.rejected)
        rule = _pair_pm_rule(chosen, rejected)
        if rule:
            ledger.drop(rule)
            continue
        good, bad = chosen[-1]["content"], rejected[-1]["content"]
        label = "A" if rng.random() < 0.5 else "B"
        first, second = (good, bad) if label == "A" else (bad, good)
        out.append(
            {
                "id": row.id,
                "split": row.split,
                "completion": label,
                "prompt": pair_pm_message(plain_context(chosen[:-1]), first, second),
            }
        )
    return ledger.result(_shuffled(pd.DataFrame(out, columns=["id", "split", "prompt", "completion"]), spec))


@builder("bt_pairs")
def build_bt_pairs(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Explicit-prompt pair rows ``{id, split, prompt, chosen, rejected}`` of the [RF] Bradley-Terry
    recipe (docs/sources.md §1.5, §5.5): ``prompt`` is the shared context as a JSON conversation
    (``rlhf_core.data.chat``), ``chosen`` / ``rejected`` the final assistant turns; a
    ``chat_template`` RM renders them back into the two whole conversations the seed tokenizes.
    All inputs concatenated and shuffled with ``shuffle_seed``.

    Dropped by rule: a conversation whose last turn is not the assistant's (``no_final_answer``),
    a pair whose contexts differ (``context_mismatch``: the standard format shares them), a blank
    final answer (``empty_answer``) and two equal ones (``identical_answers``), which a pair table
    may not hold (its asset check); the seed tokenizes such pairs as they are.

    Options: ``shuffle_seed`` (42).
    """
    check_options(spec, {"shuffle_seed"})
    df = pd.concat(list(inputs.values()), ignore_index=True)
    ledger = Ledger(spec.builder, n_input=len(df))
    out = []
    for row in df.itertuples(index=False):
        chosen, rejected = json.loads(row.chosen), json.loads(row.rejected)
        if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
            ledger.drop("no_final_answer")
        elif chosen[:-1] != rejected[:-1]:
            ledger.drop("context_mismatch")
        elif not chosen[-1]["content"].strip() or not rejected[-1]["content"].strip():
            ledger.drop("empty_answer")
        elif chosen[-1]["content"] == rejected[-1]["content"]:
            ledger.drop("identical_answers")
        else:
            out.append(
                {
                    "id": row.id,
                    "split": row.split,
                    "prompt": conversation_prompt(chosen[:-1]),
                    "chosen": chosen[-1]["content"],
                    "rejected": rejected[-1]["content"],
                }
            )
    return ledger.result(_shuffled(pd.DataFrame(out, columns=["id", "split", "prompt", "chosen", "rejected"]), spec))


def _shuffled(table: pd.DataFrame, spec: DatasetConfig) -> pd.DataFrame:
    """The rows in the order ``Dataset.shuffle(seed=shuffle_seed)`` draws (default 42)."""
    return table.iloc[np.random.default_rng(option(spec, "shuffle_seed", 42)).permutation(len(table))]


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


@builder("armorm_objective_embeddings")
def build_armorm_objective_embeddings(
    inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig
) -> CleanResult:
    """Stage-1 rows ``{id, split, embedding, <attributes>}``: the final-token hidden state of each
    ``messages`` conversation, beside its 19 labels (NaN where missing).

    Options: ``model`` (a ``ModelSource`` mapping, required), ``strip_bos_text`` (True),
    ``batch_size`` (8), ``device`` (CUDA when available), ``shuffle_seed`` (0: the seed shuffles
    before embedding, which fixes the row order its later 80/20 split sees). Like the seed, stage 1
    has no length limit.
    """
    from rlhf_core.data import armo_embeddings as armo

    check_options(spec, {"model", "strip_bos_text", "batch_size", "device", "shuffle_seed"})
    df = one_input(inputs, spec)
    df = df.iloc[np.random.default_rng(option(spec, "shuffle_seed", 0)).permutation(len(df))]
    ledger = Ledger(spec.builder, n_input=len(df))
    model, tok = armo.load_backbone(option(spec, "model"), builder=spec.builder, device=option(spec, "device", None))
    strip_bos = option(spec, "strip_bos_text", True)
    ids = [armo.render(tok, json.loads(m), strip_bos_text=strip_bos) for m in df["messages"]]
    states = armo.hidden_states_at(model, ids, [[len(s) - 1] for s in ids], option(spec, "batch_size", 8))
    out = df.drop(columns="messages")
    out.insert(2, "embedding", [s[0] for s in states])
    return ledger.result(out)


@builder("armorm_pair_embeddings")
def build_armorm_pair_embeddings(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Stage-2 rows: the input's columns less the texts, plus ``embedding`` (final token) and
    ``prompt_embedding`` (start of the last ``token_pattern``), each ``[chosen, rejected]``.

    Inputs are ``rlhflow_pairs`` tables (conversations) or ``prompt``/``chosen``/``rejected`` text
    rows such as ``reward_bench``, which become ``[user prompt, assistant response]`` as in the seed.
    A pair with a side longer than ``max_length`` tokens is dropped; a side without the pattern is
    quarantined (the seed stops with an error there).

    Options: ``model`` (required), ``token_pattern`` (``llama3``, ``gemma2`` or token ids; llama3),
    ``max_length`` (8192), ``strip_bos_text`` (True), ``batch_size`` (8), ``device`` (CUDA when available).
    """
    from rlhf_core.data import armo_embeddings as armo

    check_options(spec, {"model", "token_pattern", "max_length", "strip_bos_text", "batch_size", "device"})
    pattern = armo.token_pattern(option(spec, "token_pattern", "llama3"), builder=spec.builder)
    max_length = option(spec, "max_length", 8192)
    strip_bos = option(spec, "strip_bos_text", True)
    df = pd.concat(list(inputs.values()), ignore_index=True)
    ledger = Ledger(spec.builder, n_input=len(df))
    model, tok = armo.load_backbone(option(spec, "model"), builder=spec.builder, device=option(spec, "device", None))
    kept, sequences, positions = [], [], []
    for row_no, row in enumerate(df.itertuples(index=False), start=1):
        sides = [armo.render(tok, conv, strip_bos_text=strip_bos) for conv in _pair_conversations(row)]
        if max(len(ids) for ids in sides) > max_length:
            ledger.drop("longer_than_max_length")
            continue
        at = [armo.gating_positions(ids, pattern) for ids in sides]
        if None in at:
            side = ("chosen", "rejected")[at.index(None)]
            ledger.quarantine_row(row_no, side, f"token pattern {list(pattern)} not found", row._asdict())
            continue
        kept.append(row_no - 1)
        sequences += sides
        positions += at
    states = armo.hidden_states_at(model, sequences, positions, option(spec, "batch_size", 8))
    out = df.iloc[kept].drop(columns=[c for c in ("prompt", "chosen", "rejected") if c in df.columns])
    # states alternate chosen, rejected; each is (2, H): [prompt position, final token]
    out["embedding"] = [[c[1], r[1]] for c, r in zip(states[::2], states[1::2])]
    out["prompt_embedding"] = [[c[0], r[0]] for c, r in zip(states[::2], states[1::2])]
    return ledger.result(out)


def _pair_conversations(row) -> tuple[list[dict], list[dict]]:
    """(chosen, rejected) conversations of a pair row: a text ``prompt`` makes each response its
    assistant reply; otherwise ``chosen`` / ``rejected`` are JSON conversations."""
    prompt = getattr(row, "prompt", None)
    if isinstance(prompt, str):
        return tuple(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}]
            for text in (row.chosen, row.rejected)
        )
    return json.loads(row.chosen), json.loads(row.rejected)


# ----------------------------------------------------------------------------- RewardBench


@loader("reward_bench")
def load_reward_bench(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Pair rows ``{id, split, prompt, chosen, rejected, subset, section}`` of RewardBench's
    ``filtered`` split (single-turn texts; ``id`` is the benchmark's own).

    The benchmark scores every example, so an empty response is kept; only rows that cannot be
    scored are quarantined: a non-text field, or a subset outside the 23 that carry a section weight.
    """

    def parse(row_no: int, raw: dict) -> dict:
        rb_id = get_field(raw, "id")
        if isinstance(rb_id, bool) or not isinstance(rb_id, int):
            raise RowError("id", f"expected an integer, got {rb_id!r}")
        subset = get_str(raw, "subset")
        if subset not in SECTION_OF:
            raise RowError("subset", f"unknown subset {subset!r}")
        texts = {k: get_str(raw, k, allow_empty=True) for k in ("prompt", "chosen", "rejected")}
        return {"id": str(rb_id), **texts, "subset": subset, "section": SECTION_OF[subset]}

    return read_parquet_source(source, parse, ["id", "split", "prompt", "chosen", "rejected", "subset", "section"])
