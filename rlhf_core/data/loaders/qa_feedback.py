"""[FG] qa-feedback: the feedback files and the three RM training files built from them.

- loader ``qa_feedback``: ``train_feedback.json`` / ``dev_feedback.json`` (docs/sources.md §1.1), one row per
  example; ``id`` is the example's 0-based index in its file, as in the seed.
- builder ``fg_token_labels``: R1 (NF-ERR, sub-sentence) and R2 (F-ERR, sentence) token-label
  files (docs/sources.md §2.1).
- builder ``fg_preference_pairs``: (chosen, rejected) pairs of the holistic / R3 preference RMs
  (docs/sources.md §2.2). ``prompt + chosen`` is exactly the seed's RM input ``prompt + ' ' + prediction``.
- builder ``fg_completeness_preferences``: R3 preferences by passage coverage (docs/sources.md §2.2).
- loader ``qa_sft``: ``train_1k.json`` (and ``dev.json``, the seed's validation file) as the
  t5-large SFT rows (docs/sources.md §1.1, §4): ``prompt`` = ``text``, ``completion`` = ``answer[0]``.

Deviations from the seed: the seed ``assert``s that error spans sit on word boundaries and that a
word carries at most one error category, stopping the whole run; here such an example is
quarantined with the reason. Sentences come from ``rlhf_core.data.segmentation`` (no spaCy).
The SFT seed trains on an empty ``answer[0]`` (it only skips a falsy ``text`` or ``answer``); here an
empty reference is quarantined.
"""

from __future__ import annotations

import json
from collections import defaultdict
from difflib import SequenceMatcher
from functools import partial

import pandas as pd

from rlhf_core.config import DatasetConfig, SourceConfig, TaskConfig
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.data.registry import builder, loader
from rlhf_core.data.rows import (
    RowError,
    absorb,
    check_str_list,
    get_field,
    get_list,
    get_str,
    json_list_files,
    parse_rows,
)
from rlhf_core.data.segmentation import segment_words, subsentences
from rlhf_core.data.transforms import check_options, one_input, option

ERROR_TYPES = ("Irrelevant", "Redundant", "Incoherent", "Wrong-Grounding", "Unverifiable")
FACTUAL_ERRORS = ("Wrong-Grounding", "Unverifiable")
MISSING_TYPES = ("Missing-Answer", "Missing-Major-Auxiliary", "Missing-Minor-Auxiliary")
N_PREDICTIONS = 4
PAIRS = [(i, j) for i in range(N_PREDICTIONS) for j in range(i + 1, N_PREDICTIONS)]  # 1v2, 1v3, ... 3v4
IGNORE, SEP, NO_ERROR, NF_ERR, F_ERR = "Ignore", "</s>", "O", "NF-ERR", "F-ERR"
MIN_SIM_SCORE = 0.85


# ----------------------------------------------------------------------------- loader

FEEDBACK_COLUMNS = [
    "id",
    "split",
    "question",
    "passages",
    "gold",
    "predictions",
    "errors",
    "missing_info",
    "corrected",
    "preference",
]


@loader("qa_feedback")
def load_qa_feedback(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """Validated feedback examples of every split named in ``files`` (``train``, ``dev``).

    Columns: ``passages`` (JSON ``[[title, sent1, ...], ...]``), ``predictions`` (4 strings),
    ``errors`` / ``missing_info`` (JSON), ``corrected``, ``preference`` (6 ints).
    """
    ledger = Ledger(source.hub_id or source.path or "qa_feedback")
    records = []
    for split, part, rows in json_list_files(source, "examples"):
        records += [{**rec, "split": split} for rec in parse_rows(rows, _parse_example, part)]
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=FEEDBACK_COLUMNS))


def _parse_example(row_no: int, ex: dict) -> dict:
    question = get_str(ex, "question")
    passages = get_list(ex, "passages")
    for i, p in enumerate(passages):
        if not isinstance(p, list) or not p:
            raise RowError(f"passages[{i}]", "expected a non-empty list [title, sentence, ...]")
        check_str_list(p, f"passages[{i}]", allow_empty=True)
    predictions = [get_str(ex, f"prediction {k}") for k in range(1, N_PREDICTIONS + 1)]
    feedback = get_field(ex, "feedback")
    errors = [_check_span(i, e, predictions[0]) for i, e in enumerate(get_list(feedback, "errors"))]
    missing = [_check_missing(i, m) for i, m in enumerate(get_list(feedback, "missing-info"))]
    preference = get_list(ex, "preference", length=len(PAIRS))
    if any(p not in (0, 1, 2) or isinstance(p, bool) for p in preference):
        raise RowError("preference", f"values must be 0, 1 or 2, got {preference}")
    return {
        "id": str(row_no - 1),
        "question": question,
        "passages": json.dumps(passages, ensure_ascii=False),
        "gold": ex.get("gold") if isinstance(ex.get("gold"), str) else None,
        "predictions": predictions,
        "errors": json.dumps(errors, ensure_ascii=False),
        "missing_info": json.dumps(missing, ensure_ascii=False),
        "corrected": get_str(feedback, "corrected-prediction", allow_empty=True),
        "preference": [int(p) for p in preference],
    }


def _check_span(i: int, span: dict, text: str) -> dict:
    where = f"feedback.errors[{i}]"
    etype = span.get("error type") if isinstance(span, dict) else None
    if etype not in ERROR_TYPES:
        raise RowError(f"{where}.error type", f"unknown error type {etype!r}")
    start, end = span.get("start"), span.get("end")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise RowError(f"{where}.start/end", f"offsets must be ints, got {start!r}, {end!r}")
    if not 0 <= start < end <= len(text):
        raise RowError(f"{where}.start/end", f"span [{start}, {end}) outside prediction 1 (length {len(text)})")
    on_boundary = (
        not text[start].isspace()
        and (start == 0 or text[start - 1].isspace())
        and (end == len(text) or text[end].isspace())
    )
    if not on_boundary:
        raise RowError(f"{where}.start/end", f"span [{start}, {end}) {text[start:end]!r} is not on word boundaries")
    return {"error type": etype, "start": start, "end": end}


def _check_missing(i: int, item: dict) -> dict:
    where = f"feedback.missing-info[{i}]"
    etype = item.get("error type") if isinstance(item, dict) else None
    if etype not in MISSING_TYPES:
        raise RowError(f"{where}.error type", f"unknown missing-info type {etype!r}")
    pid, sids = item.get("passage_id"), item.get("sentence_id")
    if not isinstance(pid, int) or not isinstance(sids, list) or not all(isinstance(s, int) for s in sids):
        raise RowError(f"{where}", f"passage_id must be an int and sentence_id a list of ints, got {pid!r}, {sids!r}")
    return {"error type": etype, "passage_id": pid, "sentence_id": sids}


# ----------------------------------------------------------------------------- SFT (train_1k)

SFT_COLUMNS = ["id", "split", "prompt", "completion", "references"]


@loader("qa_sft")
def load_qa_sft(source: SourceConfig, task: TaskConfig) -> CleanResult:
    """SFT rows ``{id, split, prompt, completion, references}`` of every split named in ``files``.

    ``prompt`` is the item's ``text`` verbatim and ``completion`` its ``answer[0]`` (t5 adds
    ``</s>`` to the target itself); ``references`` keeps every answer, since ROUGE takes the max
    over all of them. Lengths (1,024 input / 200 target tokens) are truncated by the trainer,
    not filtered here. ``id`` is the item's 0-based index in its file.
    """
    ledger = Ledger(source.hub_id or source.path or "qa_sft")
    records = []
    for split, part, rows in json_list_files(source, "examples"):
        records += [{**rec, "split": split} for rec in parse_rows(rows, partial(_parse_sft_item, part), part)]
        absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=SFT_COLUMNS))


def _parse_sft_item(ledger: Ledger, row_no: int, ex: dict) -> dict | None:
    if get_field(ex, "text") in (None, "") or get_field(ex, "answer") in (None, []):
        ledger.drop("no_text_or_answer")  # the seed skips an item whose text or answer is falsy
        return None
    answers = check_str_list(get_list(ex, "answer"), "answer")
    return {"id": str(row_no - 1), "prompt": get_str(ex, "text"), "completion": answers[0], "references": answers}


# ----------------------------------------------------------------------------- R1 / R2 token labels


@builder("fg_token_labels")
def build_token_labels(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Token-label rows ``{id, split, text, feedback_tags}`` (docs/sources.md §2.1).

    Options: ``feedback_level`` (sentence | subsentence), ``error_category`` (NF-ERR | F-ERR),
    ``ignore_context`` (bool, default False), ``min_span_len`` (default 5).
    """
    check_options(spec, {"feedback_level", "error_category", "ignore_context", "min_span_len"})
    level = option(spec, "feedback_level", choices=("sentence", "subsentence"))
    category = option(spec, "error_category", choices=(NF_ERR, F_ERR))
    ignore_context = option(spec, "ignore_context", False)
    min_span_len = option(spec, "min_span_len", 5)
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    out = []
    for row_no, ex in enumerate(df.itertuples(index=False), start=1):
        try:
            words, tags = _answer_labels(ex.predictions[0], json.loads(ex.errors), level, category, min_span_len)
        except RowError as err:
            ledger.quarantine_row(row_no, err.field, f"{ex.split} example {ex.id}: {err.reason}", ex._asdict())
            continue
        if all(t == IGNORE for t in tags):
            ledger.drop("all_labels_ignore")
            continue
        text = ["question:"] + ex.question.strip().split()
        if not ignore_context:
            for i, (title, *sentences) in enumerate(json.loads(ex.passages)):
                text += (["context:"] if i == 0 else []) + f"wikipage: {title}".split() + ["text:"]
                text += " ".join(sentences).split()
        labels = [IGNORE] * len(text)
        out.append(
            {
                "id": ex.id,
                "split": ex.split,
                "text": text + ["answer:"] + words,
                "feedback_tags": labels + [IGNORE] + tags,
            }
        )
    return ledger.result(pd.DataFrame(out, columns=["id", "split", "text", "feedback_tags"]))


def _answer_labels(
    answer: str, spans: list[dict], level: str, category: str, min_span_len: int
) -> tuple[list[str], list[str]]:
    """Answer words with a ``</s>`` before each segment that carries the segment label."""
    words, starts = segment_words(answer.strip(), level)
    # Character positions with whitespace removed; a whitespace character maps to the next
    # non-space position, exactly as the seed's offset table does.
    squeezed, pos = [], 0
    for ch in answer:
        squeezed.append(pos)
        pos += not ch.isspace()
    char_label: dict[int, str] = defaultdict(str)
    for span in spans:
        etype, start, end = span["error type"], span["start"], span["end"]
        if len(answer[start:end].split()) < min_span_len and etype not in FACTUAL_ERRORS:
            continue  # short non-factual spans are noise (paper appendix D)
        for i in range(start, end):
            char_label[squeezed[i]] = F_ERR if etype in FACTUAL_ERRORS else NF_ERR
    word_labels, pos = [], 0
    for w_idx, word in enumerate(words):
        labels = {char_label[c] for c in range(pos, pos + len(word))}
        pos += len(word)
        if len(labels) > 1:
            raise RowError(
                "feedback.errors",
                f"answer word {w_idx} {word!r} carries several labels {sorted(lb or 'none' for lb in labels)}",
            )
        word_labels.append(labels.pop())
    seg_labels, current = [], set()
    for w_idx, is_start in enumerate(starts):
        if is_start and w_idx > 0:
            seg_labels.append(_segment_label(current, category))
            current = set()
        current.add(word_labels[w_idx])
    seg_labels.append(_segment_label(current, category))
    out_words, tags, seg = [], [], iter(seg_labels)
    for word, is_start in zip(words, starts):
        if is_start:
            out_words.append(SEP)
            tags.append(next(seg))
        out_words.append(word)
        tags.append(IGNORE)
    return out_words, tags


def _segment_label(labels: set[str], category: str) -> str:
    if category == NF_ERR:
        return NF_ERR if NF_ERR in labels else NO_ERROR
    if F_ERR in labels:
        return F_ERR
    # Annotation restriction #2: a segment with a non-factual error is not judged for facts.
    return IGNORE if NF_ERR in labels else NO_ERROR


# ----------------------------------------------------------------------------- preference pairs


@builder("fg_preference_pairs")
def build_preference_pairs(inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig) -> CleanResult:
    """Preference rows ``{id, split, prompt, chosen, rejected}`` from the 6 pairwise labels.

    Each (example, pair) is one input unit; ties (preference 0) are dropped by rule ``tie``.
    """
    check_options(spec, set())
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df) * len(PAIRS)
    out = []
    for ex in df.itertuples(index=False):
        prompt = _holistic_prompt(ex.question, json.loads(ex.passages))
        for (i, j), pref in zip(PAIRS, ex.preference):
            if pref == 0:
                ledger.drop("tie")
                continue
            better, worse = (i, j) if pref == 1 else (j, i)
            out.append(
                {
                    "id": f"{ex.id}-{i + 1}v{j + 1}",
                    "split": ex.split,
                    "prompt": prompt,
                    "chosen": ex.predictions[better],
                    "rejected": ex.predictions[worse],
                }
            )
    return ledger.result(pd.DataFrame(out, columns=["id", "split", "prompt", "chosen", "rejected"]))


def _holistic_prompt(question: str, passages: list[list[str]]) -> str:
    words = ["question:"] + question.strip().split()
    for i, (title, *sentences) in enumerate(passages):
        words += (["context:"] if i == 0 else []) + f"wikipage: {title}".split() + ["text:"]
        words += " ".join(sentences).split()
    # The seed scores ``prompt + ' ' + prediction``; the trailing space keeps prompt + chosen exact.
    return " ".join(words + ["answer:"]) + " "


# ----------------------------------------------------------------------------- R3 completeness


@builder("fg_completeness_preferences")
def build_completeness_preferences(
    inputs: dict[str, pd.DataFrame], spec: DatasetConfig, task: TaskConfig
) -> CleanResult:
    """Feedback rows whose ``preference`` is replaced by passage-coverage comparisons (docs/sources.md §2.2 R3).

    Examples whose corrected answer grounds no passage sentence are dropped by rule
    ``no_relevant_info``.
    """
    check_options(spec, set())
    df = one_input(inputs, spec)
    ledger = Ledger(spec.builder)
    ledger.n_input = len(df)
    keep, prefs = [], []
    for idx, ex in enumerate(df.itertuples(index=False)):
        p_sents = {
            (p_idx, s_idx): " ".join(sent.split())
            for p_idx, (_, *sents) in enumerate(json.loads(ex.passages), start=1)
            for s_idx, sent in enumerate(sents, start=1)
        }
        minor = {
            (m["passage_id"], sid)
            for m in json.loads(ex.missing_info)
            if m["error type"] == "Missing-Minor-Auxiliary"
            for sid in m["sentence_id"]
        }
        info_ids, minus = set(), set()
        for subsent, sent_id, sim in _best_passage_sentences(ex.corrected, p_sents):
            if sim < MIN_SIM_SCORE:
                continue
            info_ids.add(sent_id)
            if sent_id in minor:  # minor-only information does not count, unless prediction 1 has it
                minus.add(sent_id)
                if subsent.lower() in ex.predictions[0].lower():
                    minus.discard(sent_id)
        info_ids -= minus
        if not info_ids:
            ledger.drop("no_relevant_info")
            continue
        cov = [_coverage(pred, p_sents, info_ids) for pred in ex.predictions]
        prefs.append([1 if cov[i] > cov[j] else 2 if cov[i] < cov[j] else 0 for i, j in PAIRS])
        keep.append(idx)
    out = df.iloc[keep].copy()
    out["preference"] = prefs
    return ledger.result(out)


def _best_passage_sentences(text: str, p_sents: dict) -> list[tuple[str, tuple[int, int], float]]:
    """Each sub-sentence of ``text`` with its most similar passage sentence id and the similarity."""
    res = []
    for subsent in subsentences(text):
        n = len(subsent.split())
        window = n + int(0.05 * n)
        best_sim, best_id = -1.0, (-1, -1)
        for sent_id, p_sent in p_sents.items():
            pad = window - len(p_sent.split()) + 1
            # Padding lets a short passage sentence still form one window (else similarity is 0).
            sim = _approx_match(p_sent + " #" * pad if pad > 0 else p_sent, subsent, window)
            if sim > best_sim:
                best_sim, best_id = sim, sent_id
        res.append((subsent, best_id, best_sim))
    return res


def _approx_match(context: str, target: str, window: int) -> float:
    """Best ``SequenceMatcher.quick_ratio`` of ``target`` against word windows of ``context``."""
    if target in context:
        return 1.0
    words = context.split()
    matcher = SequenceMatcher()
    matcher.set_seq2(target)
    best = 0.0
    for k in range(len(words) - window + 1):
        matcher.set_seq1(" ".join(words[k : k + window]))
        best = max(best, matcher.quick_ratio())
        if best == 1.0:
            break
    return best


def _coverage(pred: str, p_sents: dict, info_ids: set) -> float:
    matched = {sent_id for _, sent_id, sim in _best_passage_sentences(pred, p_sents) if sim >= MIN_SIM_SCORE}
    return len(matched & info_ids) / len(info_ids)
