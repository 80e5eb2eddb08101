"""[FG] R1 / R2 token-classification reward models (docs/sources.md §2.1, §3.1, §5.1).

Artifact contract of an ``fg_token`` reward model (what fine-grained RL consumes):

* the artifact directory holds a Hugging Face ``AutoModelForTokenClassification`` saved with
  ``save_pretrained`` (safetensors) and its tokenizer;
* ``reward_model.json`` there (also under ``metadata.reward_model`` in the store's ``meta.json``)
  holds ``kind: fg_token``, ``label_type`` (``relevance`` = R1 or ``factuality`` = R2),
  ``segmentation`` (the segment unit: ``subsentence`` for relevance, ``sentence`` for factuality
  in [FG]), ``id2label``, ``error_label_id`` / ``no_error_label_id`` (which output means "this
  segment has an error" and which "no error"), ``marker`` (``before`` or ``after`` each segment)
  and ``marker_token_id``, and ``max_length``;
* training rows are either [FG] token-label files (``text`` words with ``</s>`` markers and one
  ``feedback_tags`` tag per word) or segmented responses (``prompt``, ``segments`` and each
  segment's error type, the demo's ``fine_grained_labels``);
* to label a response: segment it with ``segments_of(text, segmentation)``, build the ids with
  ``token_inputs`` (the prompt, then each segment with a marker token before or after it), and
  compare the error and no-error logits at the marker positions (a 2-way argmax,
  docs/sources.md §10.6); ``segment_errors`` does all of it.

Labels follow [FG]'s files: the label list is the sorted set of tags (``["Ignore", "NF-ERR", "O"]``
for R1, ``["F-ERR", "Ignore", "O"]`` for R2), so the network has 3 outputs, but ``Ignore`` is
never a target (-100), nor is any word token. A segment's R1 tag is NF-ERR if any of its words
carries a relevance error (Irrelevant, Redundant, Incoherent); its R2 tag is F-ERR for a factual
error (Wrong-Grounding, Unverifiable), else Ignore when it has a relevance error, else O.

Marker placement: [FG] puts ``</s>`` before each segment and reads it with a bidirectional
Longformer. A causal (GPT-2) base reading a marker before a segment could not see the segment,
so such a base puts the marker after it (``marker: after``); the label still belongs to the
segment the marker closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rlhf_core.config import FG_LABEL_TYPES, ComputeConfig, TrainConfig
from rlhf_core.data.segmentation import segment_words, subsentences
from rlhf_core.rewards.batching import pad_batch
from rlhf_core.train import rm_losses
from rlhf_core.train.loop import BatchOrder, Engine, LoopResult, total_steps

IGNORE = "Ignore"
NO_ERROR = "O"
RELEVANCE_ERRORS = {"Irrelevant", "Redundant", "Incoherent"}
FACTUAL_ERRORS = {"Wrong-Grounding", "Unverifiable"}


@dataclass(frozen=True)
class TokenLabels:
    """The label scheme of one [FG] file."""

    label_type: str
    names: tuple[str, ...]  # sorted tags: the network's outputs

    @classmethod
    def of(cls, label_type: str) -> TokenLabels:
        return cls(label_type, tuple(sorted({FG_LABEL_TYPES[label_type][0], IGNORE, NO_ERROR})))

    @property
    def error(self) -> str:
        return FG_LABEL_TYPES[self.label_type][0]

    def target(self, tag: str) -> int:
        return rm_losses.IGNORE_INDEX if tag == IGNORE else self.names.index(tag)

    def segment_tag(self, error_types: set[str]) -> str:
        """The file's tag of a segment whose words carry ``error_types`` (``O`` for none)."""
        if self.label_type == "relevance":
            return self.error if error_types & RELEVANCE_ERRORS else NO_ERROR
        if error_types & FACTUAL_ERRORS:
            return self.error
        return IGNORE if error_types & RELEVANCE_ERRORS else NO_ERROR


def segments_of(text: str, unit: str) -> list[str]:
    """The segments (sentences or sub-sentences) of a response, as whitespace-joined words."""
    words, starts = segment_words(text.strip(), unit)
    bounds = [i for i, s in enumerate(starts) if s] + [len(words)]
    return [" ".join(words[a:b]) for a, b in zip(bounds, bounds[1:])]


def labelled_segments(segments: list[str], types: list[str], unit: str, labels: TokenLabels) -> tuple[list, list]:
    """Sentence segments with their error type (``O``: none) -> (segments in ``unit``, file tags).

    A sub-sentence inherits the error type of the sentence it is cut from.
    """
    out_segments, out_tags = [], []
    for segment, kind in zip(segments, types):
        pieces = subsentences(segment) if unit == "subsentence" else [" ".join(segment.split())]
        tag = labels.segment_tag(set() if kind == NO_ERROR else {kind})
        out_segments += pieces
        out_tags += [tag] * len(pieces)
    return out_segments, out_tags


def token_inputs(
    tokenizer,
    prompt: str,
    segments: list[str],
    marker: str,
    max_length: int,
    tags: list[str] | None = None,
    labels: TokenLabels | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """``(input_ids, targets, marker positions)`` of one response.

    The prompt (left-truncated to leave room) comes first, then each segment with the marker
    token before or after it; only a marker carries a target. Segments that do not fit in
    ``max_length`` are dropped from the end, so every kept marker is real.
    """
    mark = marker_id(tokenizer)
    prompt_ids = _start(tokenizer) + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    pieces = [tokenizer(" " + s, add_special_tokens=False)["input_ids"] for s in segments]
    body, targets, positions = [], [], []
    budget = max_length - min(len(prompt_ids), max_length // 2)  # the prompt keeps at most half
    for k, piece in enumerate(pieces):
        unit = [mark] + piece if marker == "before" else piece + [mark]
        if len(body) + len(unit) > budget:
            break
        at = len(body) + (0 if marker == "before" else len(piece))
        body += unit
        positions.append(at)
        targets += [rm_losses.IGNORE_INDEX] * len(unit)
        if tags is not None:
            targets[at] = labels.target(tags[k])
    prompt_ids = prompt_ids[max(0, len(prompt_ids) - (max_length - len(body))) :]
    n = len(prompt_ids)
    return prompt_ids + body, [rm_losses.IGNORE_INDEX] * n + targets, [n + p for p in positions]


def marker_id(tokenizer) -> int:
    """The segment marker: the separator token ([FG] ``</s>``), else EOS."""
    return tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id


def token_logits(model, pad_id: int, ids: list[list[int]]) -> torch.Tensor:
    device = next(model.parameters()).device
    batch = pad_batch([{"input_ids": x} for x in ids], pad_id, device)
    return model(**batch).logits.float()


def _padded_targets(targets: list[list[int]], width: int, device) -> torch.Tensor:
    rows = [t + [rm_losses.IGNORE_INDEX] * (width - len(t)) for t in targets]
    return torch.tensor(rows, dtype=torch.long, device=device)


def _start(tokenizer) -> list[int]:
    """The encoder's leading token (RoBERTa / Longformer ``<s>``); none for a GPT-2-style tokenizer."""
    return [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []


def encode_word_rows(
    tokenizer, rows: pd.DataFrame, labels: TokenLabels, max_length: int
) -> tuple[list[list[int]], list[list[int]]]:
    """[FG] token-label files (``text`` words with ``</s>`` segment markers, one ``feedback_tags`` tag
    per word, docs/sources.md §2.1): the first sub-token of a word carries its tag, every other
    token -100; a ``</s>`` word is the marker token. Truncated on the right to ``max_length``."""
    mark = marker_id(tokenizer)
    ids, targets = [], []
    for words, tags in zip(rows["text"], rows["feedback_tags"]):
        x, y = _start(tokenizer), [rm_losses.IGNORE_INDEX] * len(_start(tokenizer))
        for word, tag in zip(words, tags):
            pieces = [mark] if word == "</s>" else tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            x += pieces
            y += [labels.target(tag)] + [rm_losses.IGNORE_INDEX] * (len(pieces) - 1)
        ids.append(x[:max_length])
        targets.append(y[:max_length])
    return ids, targets


def encode_rows(
    tokenizer, rows: pd.DataFrame, labels: TokenLabels, unit: str, marker: str, max_length: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Ids and targets of every labelled row: [FG] files (``text``, ``feedback_tags``), or segmented
    responses (``prompt``, ``segments``, ``labels``: each segment's error type or O, the demo)."""
    if "feedback_tags" in rows:
        return encode_word_rows(tokenizer, rows, labels, max_length)
    ids, targets = [], []
    for prompt, segs, types in zip(rows["prompt"], rows["segments"], rows["labels"]):
        segments, tags = labelled_segments(list(segs), list(types), unit, labels)
        x, y, _ = token_inputs(tokenizer, prompt, segments, marker, max_length, tags, labels)
        ids.append(x)
        targets.append(y)
    return ids, targets


def train_token_rm(
    model,
    tokenizer,
    rows: pd.DataFrame,
    labels: TokenLabels,
    unit: str,
    marker: str,
    train: TrainConfig,
    work_dir: Path,
    compute: ComputeConfig | None = None,
) -> LoopResult:
    """Cross-entropy at the segment markers (docs/sources.md §5.1) on the training ``rows``.

    Rows where no segment is a target (every tag ``Ignore``) are dropped, as [FG] drops them.
    """
    ids, targets = encode_rows(tokenizer, rows, labels, unit, marker, train.max_length)
    keep = [i for i, t in enumerate(targets) if any(v != rm_losses.IGNORE_INDEX for v in t)]
    ids, targets = [ids[i] for i in keep], [targets[i] for i in keep]
    if not ids:
        raise ValueError(
            f"fg_token: none of the {len(rows)} training rows keeps a labelled segment within "
            f"max_length {train.max_length}"
        )
    engine = Engine(model, train, total_steps(train, len(ids)), compute)

    def step(idx: torch.Tensor):
        logits = token_logits(engine.model, tokenizer.pad_token_id, [ids[i] for i in idx])
        y = _padded_targets([targets[i] for i in idx], logits.shape[1], logits.device)
        labelled = y != rm_losses.IGNORE_INDEX
        acc = float((logits.argmax(-1)[labelled] == y[labelled]).float().mean())
        return rm_losses.token_classification(logits, y), {"accuracy": acc}

    return engine.run(BatchOrder(len(ids), train.batch_size, train.seed), step, work_dir, "fg_token")


@torch.inference_mode()
def marker_logits(model, tokenizer, ids: list[list[int]], batch_size: int = 32) -> list[np.ndarray]:
    """Per row, the logits (n_tokens, C) of the token classifier."""
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        logits = token_logits(model, tokenizer.pad_token_id, chunk).cpu().numpy()
        out += [logits[i, : len(x)] for i, x in enumerate(chunk)]
    return out


def segment_errors(model, tokenizer, spec: dict, prompts: list[str], completions: list[str]) -> list[list[bool]]:
    """Per response, whether each of its segments has an error (the no-error logit does not beat the
    error logit at its marker: a tie is an error, as [FG]'s 2-way argmax, docs/sources.md §3.1),
    with the settings of the artifact's ``reward_model.json`` (``spec``)."""
    err, ok = spec["error_label_id"], spec["no_error_label_id"]
    rows = [
        token_inputs(tokenizer, p, segments_of(c, spec["segmentation"]), spec["marker"], spec["max_length"])
        for p, c in zip(prompts, completions)
    ]
    logits = marker_logits(model, tokenizer, [r[0] for r in rows])
    return [[bool(z[pos, err] >= z[pos, ok]) for pos in r[2]] for r, z in zip(rows, logits)]
