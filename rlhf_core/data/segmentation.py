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


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (whitespace-only sentences are dropped).

    Args:
        text: Any string; leading and trailing whitespace is ignored.

    Returns:
        The sentences in order, each stripped.
    """
    sentences, start = [], 0
    stripped = text.strip()
    for match in _SENTENCE_END.finditer(stripped):
        end = match.end()
        sentences.append(stripped[start:end])
        start = end
    sentences.append(stripped[start:])
    return [s.strip() for s in sentences if s.strip()]


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
