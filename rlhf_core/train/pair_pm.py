"""[RF] pairwise preference model: a causal LM that answers "A" or "B" (docs/sources.md §2.4, §3.5, §5.6).

The user message is ``[CONTEXT] {context} [RESPONSE A] {A} [RESPONSE B] {B} \\n`` with the context in
[RF]'s plain ``<turn>`` template (built here from ``prompt, chosen, rejected`` rows and when
scoring, or already built by the ``pair_pm`` data builder), and the answer
is the single token ``A`` or ``B``. With a chat template the message is rendered as one user
turn with the generation prompt; a tokenizer without one (the demo's BPE) reads the message as
plain text. Training puts the loss on the label token only (``rm_losses.pairwise_preference``);
the chosen response's position is drawn per pair from ``seed`` (the seed draws it unseeded).
The score is P(first preferred), averaged over both orders (``rm_losses.pair_pm_probability``).

When a message is longer than ``max_length`` it is cut on the left (the end of the message,
where the answer is read, is kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rlhf_core.config import ComputeConfig, TrainConfig
from rlhf_core.rewards.batching import pad_batch
from rlhf_core.train import rm_losses
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps

LABELS = ("A", "B")


def label_ids(tokenizer) -> tuple[int, int]:
    """Token ids of the answers ``A`` and ``B``; each must be one token."""
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in LABELS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"pair-PM: the answers {LABELS} must be single tokens, got ids {ids}")
    return ids[0][0], ids[1][0]


def message_ids(tokenizer, prompt: str, a: str, b: str, max_length: int) -> list[int]:
    """Ids of the message that precedes the answer token, left-truncated to ``max_length - 1``; the
    prompt (one user message, or a JSON conversation) is the context in [RF]'s plain template, as
    the ``pair_pm`` rows have it."""
    from rlhf_core.data.chat import pair_pm_message, plain_context, prompt_messages

    return render_message(tokenizer, pair_pm_message(plain_context(prompt_messages(prompt)), a, b), max_length)


def render_message(tokenizer, text: str, max_length: int) -> list[int]:
    """The user message as the model reads it before answering (chat template or plain text)."""
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=True, add_generation_prompt=True
        )
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)  # transformers 5: a BatchEncoding
    else:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[-(max_length - 1) :]


def answer_logits(model, pad_id: int, ids: list[list[int]]) -> torch.Tensor:
    """LM logits (B, V) at each message's last token, which predict the answer."""
    device = next(model.parameters()).device
    batch = pad_batch([{"input_ids": x} for x in ids], pad_id, device)
    logits = model(**batch).logits
    last = batch["attention_mask"].sum(dim=1) - 1
    return logits[torch.arange(len(ids), device=device), last].float()


def train_pair_pm(
    model, tokenizer, pairs: pd.DataFrame, train: TrainConfig, work_dir: Path, compute: ComputeConfig | None = None
) -> LoopResult:
    """The label-token loss on ``prompt, chosen, rejected`` rows (the chosen one at a seeded random
    slot), or on rows already in the pair-PM format (``prompt``: the message, ``completion``: A or B)."""
    a_id, b_id = label_ids(tokenizer)
    ids, labels = [], []
    if "completion" in pairs:
        for text, answer in zip(pairs["prompt"], pairs["completion"]):
            ids.append(render_message(tokenizer, text, train.max_length))
            labels.append(a_id if answer == LABELS[0] else b_id)
    else:
        first = np.random.default_rng(train.seed).random(len(pairs)) < 0.5  # chosen shown as A
        for is_a, (p, c, r) in zip(first, pairs[["prompt", "chosen", "rejected"]].itertuples(index=False)):
            ids.append(
                message_ids(tokenizer, p, c, r, train.max_length)
                if is_a
                else message_ids(tokenizer, p, r, c, train.max_length)
            )
            labels.append(a_id if is_a else b_id)
    targets = torch.tensor(labels)
    engine = Engine(model, train, total_steps(train, len(ids)), compute)

    def step(idx: torch.Tensor):
        logits = answer_logits(engine.model, tokenizer.pad_token_id, [ids[i] for i in idx])
        y = targets[idx].to(logits.device)
        right = logits[:, [a_id, b_id]].argmax(-1) == (y == b_id).long()
        return rm_losses.pairwise_preference(logits, y), {"accuracy": float(right.float().mean())}

    return engine.run(BatchOrder(len(ids), train.batch_size, train.seed), step, work_dir, "pairwise_preference")


@torch.inference_mode()
def preference_probability(
    model, tokenizer, spec: dict, prompts: list[str], first: list[str], second: list[str], batch_size: int = 32
) -> list[float]:
    """P(``first`` preferred over ``second``), averaged over both orders (docs/sources.md §3.5)."""
    a_id, b_id = label_ids(tokenizer)
    length = spec["max_length"]
    out: list[float] = []
    for s in range(0, len(prompts), batch_size):
        rows = list(zip(prompts[s : s + batch_size], first[s : s + batch_size], second[s : s + batch_size]))
        ab = answer_logits(model, tokenizer.pad_token_id, [message_ids(tokenizer, p, x, y, length) for p, x, y in rows])
        ba = answer_logits(model, tokenizer.pad_token_id, [message_ids(tokenizer, p, y, x, length) for p, x, y in rows])
        out += rm_losses.pair_pm_probability(ab, ba, a_id, b_id).cpu().tolist()
    return out


@torch.inference_mode()
def answer_accuracy(model, tokenizer, spec: dict, rows: pd.DataFrame, batch_size: int = 32) -> float:
    """Share of pair-PM-format rows (``prompt`` message, ``completion`` A or B) whose answer logit
    is the higher of the two (one order, as the rows were written)."""
    a_id, b_id = label_ids(tokenizer)
    ids = [render_message(tokenizer, t, spec["max_length"]) for t in rows["prompt"]]
    right = []
    for s in range(0, len(ids), batch_size):
        logits = answer_logits(model, tokenizer.pad_token_id, ids[s : s + batch_size])
        says_b = (logits[:, b_id] > logits[:, a_id]).cpu().numpy()
        right += list(says_b == (rows["completion"].iloc[s : s + batch_size].to_numpy() == LABELS[1]))
    return float(np.mean(right))
