"""Completed annotations -> dated batches on disk -> the table a collection's consumers read.

A poll turns every submitted annotation of a collection's pages into per-annotator records (kept apart),
or quarantines it with the annotator, the item and the reason. Each record and each quarantined annotation
has a signature, a hash of the annotations (page, id, last update) it came from; a batch holds only
signatures no earlier batch holds, so polling the same annotations again writes nothing, and an edited
annotation is written again. A batch is one directory ``<folder>/<collection>/<UTC time>/``, written
beside and renamed into place: ``manifest.json`` (records, quarantine, counts) and the records in the
format the task's loader reads:
- ``fg``: ``<split>_feedback.json``, examples of the [FG] feedback files (docs/sources.md §1.1), one per
  (item, annotator) that has a fine-grained annotation; ``preference`` comes from the same annotator's
  comparison, or is six ties (no pairs) until there is one. A comparison whose annotator has not yet
  annotated the item's spans waits (counted as pending) and is written with them.
- ``crs_ranking``: ``ballots.jsonl``, one ``{prompt, annotator, ranking, group}`` ballot per line
  (the plain layout of ``human_study``), with the item's id and its responses by model.

``collection_table`` reads every batch, keeps the latest record per (item, annotator), and builds the table:
[FG] the ``qa_feedback`` loader's rows of every record; [CRS] one ranking-RM row per item
``{id, split, prompt, completions (best first), prefix}``, the annotators' ballots merged by ranked pairs.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import SourceConfig, TaskConfig
from rlhf_core.data.loaders.qa_feedback import FEEDBACK_COLUMNS, load_qa_feedback
from rlhf_core.data.quarantine import CleanResult, Ledger
from rlhf_core.feedback.interfaces import (
    N_ANSWERS,
    AnnotationError,
    parse_comparison,
    parse_fine_grained,
    parse_ranking,
)
from rlhf_core.feedback.ranking import merge_prompt
from rlhf_core.store import hash_key
from rlhf_core.store_verify import hash_files

MANIFEST = "manifest.json"
LOCK = ".lock"
BALLOTS = "ballots.jsonl"
RANKING_COLUMNS = [
    "id",
    "split",
    "prompt",
    "completions",
    "prefix",
    "ranking",
    "annotators",
    "annotations",
]


@dataclass(frozen=True)
class Submitted:
    """One person's submitted annotation of one item on one page."""

    page: str
    annotation_id: int
    updated_at: str
    annotator: str
    item: dict[str, Any]
    result: list[dict[str, Any]]

    @property
    def ref(self) -> str:
        return f"{self.page}#{self.annotation_id}@{self.updated_at}"


def _latest(found: list[Submitted]) -> dict[tuple[str, str, str], Submitted]:
    """The latest annotation per (page, item, annotator); earlier ones by the same person are replaced."""
    out: dict[tuple[str, str, str], Submitted] = {}
    for s in sorted(found, key=lambda s: (s.updated_at, s.annotation_id)):
        out[(s.page, s.item["item_id"], s.annotator)] = s
    return out


def _quarantine(s: Submitted, reason: str) -> dict[str, Any]:
    return {
        "item_id": s.item["item_id"],
        "annotator": s.annotator,
        "page": s.page,
        "annotation": s.ref,
        "reason": reason,
        "signature": hash_key([s.ref]),
    }


def collect(kind: str, found: list[Submitted]) -> tuple[list[dict], list[dict], int]:
    """``(records, quarantined, pending)`` of every submitted annotation of a collection."""
    latest = _latest(found)
    records, quarantined, pending = [], [], 0
    by_person: dict[tuple[str, str], dict[str, Submitted]] = defaultdict(dict)
    for (page, item_id, annotator), s in latest.items():
        by_person[(item_id, annotator)][page] = s
    for (item_id, annotator), pages in sorted(by_person.items()):
        try:
            if kind == "crs_ranking":
                s = pages["crs_ranking"]
                record = _ballot(s, parse_ranking(s.item, s.result))
                used = [s]
            else:
                if "fg_fine_grained" not in pages:
                    pending += 1
                    continue
                s = pages["fg_fine_grained"]
                record, used = _fg_example(s, parse_fine_grained(s.item, s.result)), [s]
                if (cmp := pages.get("fg_comparison")) is not None:
                    try:
                        record["preference"] = parse_comparison(cmp.item, cmp.result)
                        used.append(cmp)
                    except AnnotationError as err:
                        quarantined.append(_quarantine(cmp, str(err)))
        except AnnotationError as err:
            quarantined.append(_quarantine(s, str(err)))
            continue
        refs = [u.ref for u in used]
        records.append(
            {
                "item_id": item_id,
                "annotator": annotator,
                "annotations": refs,
                "signature": hash_key(refs),
                "record": record,
            }
        )
    return records, quarantined, pending


def _fg_example(s: Submitted, feedback: dict) -> dict[str, Any]:
    item = s.item
    return {
        "question": item["question"],
        "passages": item.get("passages") or [],
        "gold": None,
        **{f"prediction {k}": item[f"answer_{k}"] for k in range(1, N_ANSWERS["fg"] + 1)},
        "feedback": feedback,
        "preference": [0] * 6,
    }


def _ballot(s: Submitted, ranking: list[str]) -> dict[str, Any]:
    item = s.item
    responses = {item["keys"][str(k)]: item[f"response_{k + 1}"] for k in range(len(item["keys"]))}
    return {
        "group": item["collection"],
        "prompt": item["prompt"],
        "annotator": s.annotator,
        "ranking": ranking,
        "item_id": item["item_id"],
        "responses": responses,
    }


# ----------------------------------------------------------------------------- batches on disk


def batch_dirs(folder: Path) -> list[Path]:
    """A collection's batches, oldest first (their names are UTC times)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def fingerprint(folder: Path) -> str:
    """A hash of every batch's name and files: what the collection's table is keyed by."""
    return hash_key([(b.name, hash_files(b)[0]) for b in batch_dirs(folder)])


def written_signatures(folder: Path) -> set[str]:
    seen = set()
    for batch in batch_dirs(folder):
        manifest = json.loads((batch / MANIFEST).read_text(encoding="utf-8"))
        seen |= {r["signature"] for r in manifest["records"]} | {q["signature"] for q in manifest["quarantined"]}
    return seen


def write_batch(
    folder: Path,
    kind: str,
    split: str,
    found: list[Submitted],
    now: datetime | None = None,
) -> tuple[Path | None, dict[str, int]]:
    """Write what no earlier batch holds as a new batch (``None`` when there is nothing new), and the counts.
    One writer at a time per folder (the sensor's poll and a webhook call may overlap)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write_batch(folder, kind, split, found, now)


def _write_batch(
    folder: Path, kind: str, split: str, found: list[Submitted], now: datetime | None
) -> tuple[Path | None, dict[str, int]]:
    records, quarantined, pending = collect(kind, found)
    seen = written_signatures(folder)
    records = [r for r in records if r["signature"] not in seen]
    quarantined = [q for q in quarantined if q["signature"] not in seen]
    counts = {
        "annotations": len(found),
        "new_records": len(records),
        "new_quarantined": len(quarantined),
        "pending": pending,
    }
    if not records and not quarantined:
        return None, counts
    now = now or datetime.now(timezone.utc)
    name = now.strftime("%Y-%m-%dT%H%M%S.%fZ")
    final, tmp = folder / name, folder / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if kind == "crs_ranking":
        lines = [json.dumps(r["record"], ensure_ascii=False) for r in records]
        (tmp / BALLOTS).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        examples = [r["record"] for r in records]
        (tmp / f"{split}_feedback.json").write_text(json.dumps(examples, ensure_ascii=False, indent=1), "utf-8")
    manifest = {
        "batch": name,
        "kind": kind,
        "split": split,
        "counts": counts,
        "records": [{k: v for k, v in r.items() if k != "record"} for r in records],
        "quarantined": quarantined,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.rename(final)
    return final, counts


# ----------------------------------------------------------------------------- the collection's table


def collection_table(folder: Path, kind: str, task: TaskConfig) -> tuple[CleanResult, dict[str, Any]]:
    """The table of every batch of a collection, and what went into it (batches, annotations)."""
    ledger = Ledger(str(folder))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    batches = []
    for batch in batch_dirs(folder):
        manifest = json.loads((batch / MANIFEST).read_text(encoding="utf-8"))
        batches.append(manifest["batch"])
        for q in manifest["quarantined"]:
            ledger.n_input += 1
            ledger.quarantine_row(
                None,
                q["page"],
                f"annotator {q['annotator']!r}, item {q['item_id']!r}: {q['reason']}",
                q,
            )
        for row in _batch_rows(batch, manifest, kind, task, ledger):
            ledger.n_input += 1
            if (row["item_id"], row["annotator"]) in latest:
                ledger.drop("replaced_by_a_later_annotation")
            latest[(row["item_id"], row["annotator"])] = row
    rows = list(latest.values())
    if kind == "crs_ranking":
        table = _rankings(rows, manifest_split(folder), ledger)
    else:
        table = pd.DataFrame(rows, columns=[*FEEDBACK_COLUMNS, "item_id", "annotator", "annotations"])
    used = sorted({a for r in rows for a in r["annotations"]})
    return ledger.result(table), {"batches": batches, "annotations_used": used}


def manifest_split(folder: Path) -> str:
    dirs = batch_dirs(folder)
    return json.loads((dirs[-1] / MANIFEST).read_text(encoding="utf-8"))["split"] if dirs else "train"


def _batch_rows(batch: Path, manifest: dict, kind: str, task: TaskConfig, ledger: Ledger) -> list[dict]:
    """A batch's records as rows with ``item_id``, ``annotator`` and ``annotations``; [FG] through the loader."""
    meta = manifest["records"]
    if kind == "crs_ranking":
        ballots = [json.loads(line) for line in (batch / BALLOTS).read_text(encoding="utf-8").splitlines()]
        return [{**b, "annotations": m["annotations"]} for b, m in zip(ballots, meta)]
    split = manifest["split"]
    source = SourceConfig(loader="qa_feedback", path=str(batch), files={split: f"{split}_feedback.json"})
    result = load_qa_feedback(source, task)
    ledger.n_input += len(result.quarantined)
    ledger.quarantine += result.quarantined.to_dict("records")
    rows = []
    for row in result.kept.to_dict("records"):
        m = meta[int(row["id"])]  # the loader's id is the example's index in the file
        rows.append(
            {
                **row,
                "id": f"{m['item_id']}/{m['annotator']}",
                "item_id": m["item_id"],
                "annotator": m["annotator"],
                "annotations": m["annotations"],
            }
        )
    return rows


def _rankings(ballots: list[dict], split: str, ledger: Ledger) -> pd.DataFrame:
    by_item: dict[str, list[dict]] = defaultdict(list)
    for b in ballots:
        by_item[b["item_id"]].append(b)
    out = []
    for item_id, votes in sorted(by_item.items()):
        merged = merge_prompt([v["ranking"] for v in votes])
        ledger.drop("merged_into_the_item_ranking", len(votes) - 1)
        responses = votes[0]["responses"]
        out.append(
            {
                "id": item_id,
                "split": split,
                "prompt": votes[0]["prompt"],
                "completions": [responses[m] for m in merged],
                "prefix": [votes[0]["prompt"]],
                "ranking": merged,
                "annotators": [v["annotator"] for v in votes],
                "annotations": sorted(a for v in votes for a in v["annotations"]),
            }
        )
    return pd.DataFrame(out, columns=RANKING_COLUMNS)
