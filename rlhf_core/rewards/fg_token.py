"""[FG] R1 / R2 as dense rewards: a token-classification RM's verdict on every segment (docs/sources.md §3.1, §5.1).

The completion is cut into sub-sentences (R1, relevance) or sentences (R2, factuality) with
``reward_segments``; the RM reads the words

    <context words> answer: <sep> <segment 1 words> <sep> <segment 2 words> ...

(``is_split_into_words``, truncated to ``max_length``), where the context is the prompt, or only
its question (the words before ``context:``) for R1. At each ``<sep>`` (its first token) the
segment is correct when the ``O`` logit beats the error label's logit, a 2-way argmax with ties
going to the error as in [FG]; the segment's reward is then ``positive_reward``, else
``negative_reward`` (defaults +1 / -1; [FG] uses +-0.3 for R1 and +-0.5 for R2, set here or as
the component's weight). A segment whose ``<sep>`` was truncated away gets no reward and is counted.

    r1 = build_scorer("fg_segments", model="artifacts/qa_feedback/reward_model/<key>", unit="subsentence",
                      error_label="NF-ERR", question_only=True)
    r1.segment_rewards(prompts, completions)   # [[(18, 1.0), (79, -1.0)], ...]
    r1(prompts, completions)                   # the sum per completion: [0.0, ...]

This reads checkpoints in [FG]'s own input format (e.g. the seed's Longformer R1/R2); a token RM
trained by this pipeline scores through the ``reward_model`` scorer, whose ``reward_model.json``
names its format (``rlhf_core.rewards.trained_rm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlhf_core.data.segmentation import reward_segments
from rlhf_core.rewards.base import register
from rlhf_core.rewards.model_loading import load_model_and_tokenizer
from rlhf_core.rewards.model_scorer import BatchedModelScorer, ScoreResult

OK_LABEL = "O"
ANSWER_MARKER = "answer:"
CONTEXT_MARKER = "context:"


@register("fg_segments")
class FineGrainedSegmentScorer(BatchedModelScorer):
    """Per-segment rewards of an [FG] token-classification RM (R1 relevance, R2 factuality)."""

    name = "fg_segments"
    default_model = None
    default_max_length = 2048  # [FG] max_seq_length

    def __init__(
        self,
        model: str,
        unit: str,
        error_label: str,
        revision: str | None = None,
        question_only: bool = False,
        sep: str | None = None,
        positive_reward: float = 1.0,
        negative_reward: float = -1.0,
        batch_size: int = 16,
        device: str | None = None,
        max_length: int | None = None,
    ):
        super().__init__(model=model, revision=revision, device=device, max_length=max_length, progress=False)
        self.unit = unit
        reward_segments("", unit)  # an unknown unit fails here, not mid-training
        labels = self.model.config.label2id
        missing = [x for x in (error_label, OK_LABEL) if x not in labels]
        if missing:
            raise ValueError(f"fg_segments: labels {missing} not among the model's {sorted(labels)}")
        self.error_id, self.ok_id = labels[error_label], labels[OK_LABEL]
        self.sep = sep or self.tokenizer.sep_token or self.tokenizer.eos_token
        if self.sep is None:
            raise ValueError("fg_segments: the tokenizer has no sep or eos token; give sep")
        self.question_only = question_only
        self.positive, self.negative = float(positive_reward), float(negative_reward)
        self.batch_size = batch_size

    def load(self, source: str, revision: str | None, device: str | None):
        from transformers import AutoModelForTokenClassification

        return load_model_and_tokenizer(AutoModelForTokenClassification, source, revision, device)

    def model_words(self, prompt: str, segments: Sequence[str]) -> list[str]:
        """The RM's input words: the context, ``answer:``, then ``<sep>`` before each segment."""
        context = prompt.split()
        if self.question_only and CONTEXT_MARKER in context:
            context = context[: context.index(CONTEXT_MARKER)]
        return context + [ANSWER_MARKER] + [w for seg in segments for w in [self.sep, *seg.split()]]

    @torch.inference_mode()
    def verdicts(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[tuple[int, bool | None]]]:
        """``(end_char, correct)`` per segment of each completion; ``correct`` None: truncated away."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        segs = [reward_segments(c, self.unit) for c in completions]
        words = [self.model_words(p, [t for t, _ in s]) for p, s in zip(prompts, segs)]
        out: list[list[tuple[int, bool | None]]] = []
        for start in range(0, len(words), self.batch_size):
            chunk = words[start : start + self.batch_size]
            enc = self.tokenizer(
                chunk,
                is_split_into_words=True,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float().cpu()
            for i, row_words in enumerate(chunk):
                first_token = {}
                for pos, w in enumerate(enc.word_ids(i)):
                    if w is not None and w not in first_token:
                        first_token[w] = pos
                sep_words = [w for w, word in enumerate(row_words) if word == self.sep]
                sep_words = sep_words[len(sep_words) - len(segs[start + i]) :]  # a sep in the context is not a segment
                row = []
                for w, (_, end) in zip(sep_words, segs[start + i]):
                    pos = first_token.get(w)
                    row.append(
                        (end, None if pos is None else bool(logits[i, pos, self.ok_id] > logits[i, pos, self.error_id]))
                    )
                out.append(row)
        return out

    def _rewards(self, row: list[tuple[int, bool | None]]) -> list[tuple[int, float]]:
        return [(end, self.positive if ok else self.negative) for end, ok in row if ok is not None]

    def segment_rewards(self, prompts: list[str], completions: list[str]) -> list[list[tuple[int, float]]]:
        return [self._rewards(row) for row in self.verdicts(prompts, completions)]

    def score_with_stats(self, prompts: Sequence[str], completions: Sequence[str]) -> ScoreResult:
        """The sum of a completion's segment rewards; truncated: a segment lost its reward."""
        rows = self.verdicts(prompts, completions)
        return ScoreResult(
            [float(sum(r for _, r in self._rewards(row))) for row in rows],
            [any(ok is None for _, ok in row) for row in rows],
        )
