"""Sentence and sub-sentence segmentation of answers (docs/sources.md §2.1 step 1, §2.2 step 3).

Deviation from the seed: [FG] splits sentences with spaCy ``en_core_web_sm``, which cannot be
installed here. ``split_sentences`` is a rule-based stand-in in the spirit of spaCy's
``sentencizer`` pipe: a sentence ends at whitespace that follows ``.``, ``!`` or ``?`` (optionally
followed by closing quotes or brackets). Unlike the statistical parser it also splits after
abbreviations ("e.g. the") and never splits where punctuation is missing. Every caller goes
through this one function, so a better sentencizer changes behaviour in one place. Sentences
are always runs of whole whitespace words, so the words of all sentences are ``text.split()``.
"""

from __future__ import annotations

import re

MIN_SUBSENT_WORDS = 5

# Sentence-final punctuation plus any closing quotes/brackets, when whitespace follows.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)")
_SUBSENT_END = re.compile(r"[,;!?]")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each sentence of ``text``, without surrounding whitespace
    (``end`` is spaCy's ``sent.end_char``); whitespace-only sentences are dropped."""
    spans, start = [], 0
    for end in [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]:
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = end
    return spans


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (whitespace-only sentences are dropped).

    Args:
        text: Any string; leading and trailing whitespace is ignored.

    Returns:
        The sentences in order, each stripped.
    """
    return [text[a:b] for a, b in sentence_spans(text)]


def subsentence_starts(words: list[str], min_words: int = MIN_SUBSENT_WORDS) -> list[bool]:
    """Mark the words that start a sub-sentence inside one sentence ([FG] rule, MIN = 5).

    Word 0 starts. Word i starts when word i-1 ends with ``, ; ! ?`` and at least ``min_words``
    words follow; if the previous start is closer than ``min_words``, that start moves to i
    (unless it is word 0, in which case i is not marked).
    """
    if not words:
        raise ValueError("subsentence_starts needs at least one word")
    starts = [True]
    last_start = 0
    for i in range(1, len(words)):
        if _SUBSENT_END.match(words[i - 1][-1]) and i + min_words < len(words):
            if i - last_start < min_words:
                if last_start > 0:
                    starts[last_start] = False
                    starts.append(True)
                    last_start = i
                else:
                    starts.append(False)
            else:
                starts.append(True)
                last_start = i
        else:
            starts.append(False)
    return starts


def segment_words(text: str, level: str) -> tuple[list[str], list[bool]]:
    """Whitespace words of ``text`` and whether each starts a segment.

    Args:
        text: The answer (stripped before sentence splitting, as in the seed).
        level: ``"sentence"`` or ``"subsentence"``.

    Returns:
        ``(words, starts)`` where ``words == text.split()`` and ``starts[0]`` is True.
    """
    if level not in ("sentence", "subsentence"):
        raise ValueError(f"unknown feedback level {level!r}; expected 'sentence' or 'subsentence'")
    words: list[str] = []
    starts: list[bool] = []
    for sentence in split_sentences(text):
        sent_words = sentence.split()
        words += sent_words
        if level == "subsentence":
            starts += subsentence_starts(sent_words)
        else:
            starts += [True] + [False] * (len(sent_words) - 1)
    if starts:
        starts[0] = True
    return words, starts


def subsentences(text: str) -> list[str]:
    """Sub-sentence strings of whitespace-normalised ``text`` (used by [FG] R3 matching)."""
    out = []
    for sentence in split_sentences(" ".join(text.split())):
        words = sentence.split()
        idx = [i for i, s in enumerate(subsentence_starts(words)) if s] + [len(words)]
        out += [" ".join(words[a:b]) for a, b in zip(idx, idx[1:])]
    return out


SEGMENT_UNITS = ("subsentence", "sentence")


def reward_segments(text: str, unit: str) -> list[tuple[str, int]]:
    """The segments a dense reward scores, as ``(segment text, end character)`` ([FG] reward.py,
    docs/sources.md §3.1).

    Boundaries are 0 and each sentence's end (``sentence``), or each sub-sentence's first
    character (``subsentence``: the MIN-5 rule inside each sentence, word offsets found left to
    right), then ``len(text)``; segment j runs from boundary j to boundary j+1, so its text may
    carry the whitespace before the next segment. An empty or whitespace-only text has none.
    """
    if unit not in SEGMENT_UNITS:
        raise ValueError(f"unknown segmentation unit {unit!r}; expected one of {SEGMENT_UNITS}")
    spans = sentence_spans(text)
    if not spans:
        return []
    if unit == "sentence":
        bounds = [0] + [end for _, end in spans]
    else:
        bounds = []
        for start, end in spans:
            words, offsets, at = text[start:end].split(), [], start
            for word in words:
                at = text.index(word, at)
                offsets.append(at)
                at += len(word)
            bounds += [o for o, first in zip(offsets, subsentence_starts(words)) if first]
        bounds.append(len(text))
    return [(text[a:b], b) for a, b in zip(bounds, bounds[1:])]
