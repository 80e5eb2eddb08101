"""The seeds' annotation interfaces: what an item shows, and what a person's answer turns into.

Two kinds of collection (docs/sources.md §8):
- ``fg``: [FG]'s tool. Each item is a question, its passages and four answers. The ``fg_fine_grained``
  page has the annotator mark error spans of answer 1 (one type each, by priority: Irrelevant,
  Repetitive, Inconsistent fact with evidence ids, Unverifiable, Incoherent), list missing information
  and correct the answer; the ``fg_comparison`` page judges the six pairs of answers. Together they
  are one example of the feedback files (``feedback`` and ``preference``, docs/sources.md §1.1).
- ``crs_ranking``: [CRS]'s study. Each item is an instruction and three shuffled responses, ranked 1-3;
  the shuffle is kept in the item (``keys``, like the seed's ``all_keys.json``).

An answer that breaks the contract raises ``AnnotationError`` with the reason; the caller quarantines
it with the annotator and the item. The page layouts are Label Studio labeling configs in
``configs/annotation/<page>.xml``; the ``from_name`` values read here are the control names there.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from rlhf_core.data.loaders.qa_feedback import MISSING_TYPES, PAIRS
from rlhf_core.data.segmentation import split_sentences
from rlhf_core.feedback.ranking import RankingError, check_ballot
from rlhf_core.store import hash_key

PAGES = {"fg": ("fg_fine_grained", "fg_comparison"), "crs_ranking": ("crs_ranking",)}
N_ANSWERS = {"fg": 4, "crs_ranking": 3}
# The tool's names, by the seed's priority, and the feedback files' names for them (docs/sources.md §1.1).
ERROR_LABELS = {
    "Irrelevant": "Irrelevant",
    "Repetitive": "Redundant",
    "Inconsistent fact": "Wrong-Grounding",
    "Unverifiable": "Unverifiable",
    "Incoherent": "Incoherent",
}
MISSING_FIELDS = dict(zip(("missing_answer", "missing_major", "missing_minor"), MISSING_TYPES))
PAIR_CHOICE = {"Equal": 0}  # "Answer i" -> 1 when i is the pair's first answer, 2 when its second
_IDS = re.compile(r"^\s*(\d+)\s*:\s*(\d+(?:\s*,\s*\d+)*)\s*$")


class AnnotationError(ValueError):
    """A submitted annotation that cannot become a feedback row; the message is the reason."""


# ----------------------------------------------------------------------------- items


def split_qa_prompt(prompt: str) -> tuple[str, list[list[str]]]:
    """``(question, passages)`` of a prompt in qa-feedback's input layout
    (``question: q context: wikipage: title text: content | wikipage: ...``, docs/sources.md §1.1);
    any other prompt is the question itself, without passages. Passage content starts with its title."""
    match = re.match(r"^question:\s*(.*?)\s+context:\s*(wikipage:.*)$", prompt, re.DOTALL)
    if not match:
        return prompt.strip(), []
    passages = []
    for part in re.split(r"\s\|\s(?=wikipage:)", match.group(2)):
        page = re.match(r"^wikipage:\s*(.*?)\s+text:\s*(.*)$", part.strip(), re.DOTALL)
        if page:
            title, content = page.group(1).strip(), page.group(2).strip()
            content = content[len(title) :].strip() if content.startswith(title) else content
            passages.append([title, *split_sentences(content)])
    return match.group(1).strip(), passages


def passages_text(passages: list[list[str]]) -> str:
    """The passages as the page shows them, every sentence behind its ``[passage:sentence]`` id."""
    return "\n".join(
        f"{title}\n" + " ".join(f"[{p}:{s}] {sent}" for s, sent in enumerate(sents, start=1))
        for p, (title, *sents) in enumerate(passages, start=1)
    )


def shown_text(text: str) -> str:
    """An answer as the page shows it and the feedback file stores it: control characters dropped, whitespace
    runs one space, so the page's character offsets index exactly the stored prediction."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def build_items(
    collection: str,
    kind: str,
    answers: dict[str, dict[str, tuple[str, str]]],
    policies: Sequence[str],
    sample: int | None,
    seed: int,
) -> list[dict[str, Any]]:
    """The items of a collection: one per prompt that every listed policy answered with some text.

    ``answers[policy][prompt_id] = (prompt, completion)``. ``item_id`` hashes the collection, the prompt
    and the answers, so pushing the same generations again finds the same items; ``sample`` keeps a
    seeded sample of the prompts.
    """
    if len(policies) != N_ANSWERS[kind] or len(set(policies)) != len(policies):
        raise ValueError(
            f"feedback collection {collection!r}: {kind} needs {N_ANSWERS[kind]} distinct policies, "
            f"got {list(policies)}"
        )
    # an empty answer cannot be marked up or compared (the feedback files require every prediction)
    prompt_ids = sorted(
        pid
        for pid in set.intersection(*(set(answers[p]) for p in policies))
        if all(shown_text(answers[p][pid][1]) for p in policies)
    )
    if sample is not None and sample < len(prompt_ids):
        prompt_ids = sorted(random.Random(seed).sample(prompt_ids, sample))
    items = []
    for pid in prompt_ids:
        prompt = answers[policies[0]][pid][0]
        texts = [shown_text(answers[p][pid][1]) for p in policies]
        question, passages = split_qa_prompt(prompt)
        item = {
            "item_id": f"{collection}-{pid}-{hash_key(prompt, texts)[:10]}",
            "collection": collection,
            "prompt_id": str(pid),
            "prompt": prompt,
            "question": question,
        }
        if kind == "fg":
            item.update(
                {
                    "passages": passages,
                    "passages_text": passages_text(passages),
                    "models": list(policies),
                    **{f"answer_{k}": t for k, t in enumerate(texts, start=1)},
                }
            )
        else:  # shuffled per item, reproducibly; keys say which model wrote response k + 1
            order = list(range(len(policies)))
            random.Random(f"{seed}:{item['item_id']}").shuffle(order)
            item.update(
                {
                    "keys": {str(k): policies[i] for k, i in enumerate(order)},
                    **{f"response_{k}": texts[i] for k, i in enumerate(order, start=1)},
                }
            )
        items.append(item)
    return items


# ----------------------------------------------------------------------------- answers


def _by_name(result: list[dict], name: str) -> list[dict]:
    return [r for r in result if r.get("from_name") == name]


def _texts(result: list[dict], name: str) -> list[str]:
    return [t for r in _by_name(result, name) for t in (r.get("value", {}).get("text") or [])]


def _evidence_ids(text: str, passages: list[list[str]], what: str) -> tuple[int, list[int]]:
    """``(passage_id, [sentence_id, ...])`` of ``"p:s,s"``; the ids must exist (both 1-based)."""
    match = _IDS.match(text)
    if not match:
        raise AnnotationError(f"{what}: {text!r} is not passage:sentence ids like '2:3' or '2:3,4'")
    pid, sids = int(match.group(1)), [int(s) for s in match.group(2).split(",")]
    if not 1 <= pid <= len(passages):
        raise AnnotationError(f"{what}: evidence passage {pid} does not exist (the item has {len(passages)})")
    missing = [s for s in sids if not 1 <= s < len(passages[pid - 1])]
    if missing:
        raise AnnotationError(
            f"{what}: evidence sentence(s) {missing} do not exist in passage {pid} "
            f"({len(passages[pid - 1]) - 1} sentences)"
        )
    return pid, sids


def _span(region: dict, answer: str) -> tuple[int, int]:
    """The region's offsets into the answer, trimmed of surrounding whitespace; inside the answer and on
    word boundaries (the feedback files' contract, docs/sources.md §2.1)."""
    value = region.get("value", {})
    start, end = value.get("start"), value.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not (
        0 <= start < end <= len(answer)
    ):
        raise AnnotationError(f"span [{start}, {end}) is outside the answer (length {len(answer)})")
    while start < end and answer[start].isspace():
        start += 1
    while end > start and answer[end - 1].isspace():
        end -= 1
    if start == end:
        raise AnnotationError("a span covers only whitespace")
    if (start > 0 and not answer[start - 1].isspace()) or (end < len(answer) and not answer[end].isspace()):
        raise AnnotationError(f"span [{start}, {end}) {answer[start:end]!r} cuts a word")
    return start, end


def parse_fine_grained(item: dict, result: list[dict]) -> dict[str, Any]:
    """The ``feedback`` object of one fine-grained annotation of answer 1 (docs/sources.md §1.1)."""
    answer, passages = item["answer_1"], item.get("passages") or []
    evidence = {
        r.get("id"): " ".join(r.get("value", {}).get("text") or []).strip() for r in _by_name(result, "evidence")
    }
    errors = []
    for region in _by_name(result, "errors"):
        labels = region.get("value", {}).get("labels") or []
        if len(labels) != 1 or labels[0] not in ERROR_LABELS:
            raise AnnotationError(f"error type {labels!r} is not one of {list(ERROR_LABELS)}")
        start, end = _span(region, answer)
        etype, note = ERROR_LABELS[labels[0]], evidence.get(region.get("id"), "")
        if etype == "Wrong-Grounding":
            ids = [
                _evidence_ids(part, passages, f"evidence of {answer[start:end]!r}")
                for part in re.split(r"[;\n]|,\s*(?=\d+\s*:)", note)
                if part.strip()
            ]
            if not ids:
                raise AnnotationError(f"inconsistent fact {answer[start:end]!r} without evidence ids")
            note = json.dumps(ids)
        errors.append({"error type": etype, "explanation": note, "start": start, "end": end})
    errors.sort(key=lambda e: e["start"])
    for a, b in pairwise(errors):
        if b["start"] < a["end"]:
            raise AnnotationError(
                f"overlapping spans {answer[a['start'] : a['end']]!r} and {answer[b['start'] : b['end']]!r}"
            )
    if errors and _by_name(result, "no_error"):
        raise AnnotationError("confirmed 'no error' but marked error spans")
    missing = []
    for name, mtype in MISSING_FIELDS.items():
        for text in _texts(result, name):
            for line in filter(str.strip, text.splitlines()):
                pid, sids = _evidence_ids(line, passages, mtype)
                missing.append({"error type": mtype, "passage_id": pid, "sentence_id": sids})
    corrected = _texts(result, "corrected")
    return {
        "errors": errors,
        "missing-info": missing,
        "corrected-prediction": corrected[-1].strip() if corrected else answer,
    }


def parse_comparison(item: dict, result: list[dict]) -> list[int]:
    """The six ``preference`` values (1: the pair's first answer, 2: its second, 0: equal)."""
    prefs = []
    for i, j in PAIRS:
        name = f"pair_{i + 1}_{j + 1}"
        choices = [c for r in _by_name(result, name) for c in r.get("value", {}).get("choices") or []]
        mapping = {**PAIR_CHOICE, f"Answer {i + 1}": 1, f"Answer {j + 1}": 2}
        if len(choices) != 1 or choices[0] not in mapping:
            raise AnnotationError(f"pair {i + 1}v{j + 1}: expected one of {list(mapping)}, got {choices}")
        prefs.append(mapping[choices[0]])
    return prefs


def parse_ranking(item: dict, result: list[dict]) -> list[str]:
    """The models, best first, of one ranking of the item's shuffled responses."""
    keys = item["keys"]
    ranks = {}
    for k in range(len(keys)):
        choices = [c for r in _by_name(result, f"rank_{k + 1}") for c in r.get("value", {}).get("choices") or []]
        if len(choices) == 1 and choices[0].isdigit():
            ranks[keys[str(k)]] = int(choices[0])
    if len(set(ranks.values())) != len(ranks):
        raise AnnotationError(f"a ranking that gives two responses one rank: {ranks}")
    try:
        return check_ballot(sorted(ranks, key=ranks.__getitem__), keys.values())
    except RankingError as err:
        raise AnnotationError(f"a ranking with {err}") from None
