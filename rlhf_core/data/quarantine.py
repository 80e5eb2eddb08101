"""Bad input loses nothing: rows are kept, dropped by a named rule, or quarantined with a reason.

A loader or cleaner collects its decisions in a ``Ledger``; ``ledger.result(kept)`` gives a
``CleanResult`` whose counts become asset metadata. ``SourceError`` is for input that makes a
whole source unusable (a missing file, a file that is not JSON lines at all); it names the file,
and the row and field when there is one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

QUARANTINE_COLUMNS = ["source", "row", "field", "reason", "raw"]


class SourceError(ValueError):
    """The source cannot be used at all."""

    def __init__(self, source: str, message: str, row: int | None = None, field: str | None = None):
        where = source + (f", row {row}" if row is not None else "") + (f", field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")
        self.source, self.row, self.field = source, row, field


@dataclass
class CleanResult:
    kept: pd.DataFrame
    quarantined: pd.DataFrame
    dropped: dict[str, int]  # rule name -> rows removed by that documented rule
    n_input: int
    flagged: dict[str, int] = field(default_factory=dict)  # kept rows that look suspicious, by reason

    def counts(self) -> dict[str, int]:
        out = {"input_rows": self.n_input, "kept_rows": len(self.kept), "quarantined_rows": len(self.quarantined)}
        out.update({f"dropped_{rule}": n for rule, n in sorted(self.dropped.items())})
        out.update({f"suspicious_{reason}": n for reason, n in sorted(self.flagged.items())})
        return out

    def check_accounted(self) -> None:
        """Every input row is kept, dropped by a rule, or quarantined: nothing vanishes."""
        total = len(self.kept) + len(self.quarantined) + sum(self.dropped.values())
        if total != self.n_input:
            raise AssertionError(f"row accounting broken: {self.counts()}")


@dataclass
class Ledger:
    source: str
    n_input: int = 0
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    flagged: Counter = field(default_factory=Counter)

    def quarantine_row(self, row: int, field_name: str, reason: str, raw: Any) -> None:
        raw_text = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
        self.quarantine.append(
            {"source": self.source, "row": row, "field": field_name, "reason": reason, "raw": raw_text[:2000]}
        )

    def drop(self, rule: str, n: int = 1) -> None:
        self.dropped[rule] += n

    def flag(self, reason: str, n: int = 1) -> None:
        """Count kept rows that look wrong but that the source keeps (reported, not removed)."""
        self.flagged[reason] += n

    def result(self, kept: pd.DataFrame) -> CleanResult:
        quarantined = pd.DataFrame(self.quarantine, columns=QUARANTINE_COLUMNS)
        res = CleanResult(
            kept.reset_index(drop=True),
            quarantined,
            dict(self.dropped),
            self.n_input,
            {k: n for k, n in self.flagged.items() if n},
        )
        res.check_accounted()
        return res


def read_jsonl(path: str, ledger: Ledger) -> list[tuple[int, dict]]:
    """Parse a JSON-lines file; a broken line is quarantined (row numbers are 1-based lines)."""
    try:
        fh = open(path, encoding="utf-8")
    except OSError as err:
        raise SourceError(str(path), f"cannot open: {err.strerror}") from None
    with fh:
        return parse_jsonl(fh, ledger)


def parse_jsonl(lines: Iterable[str], ledger: Ledger) -> list[tuple[int, dict]]:
    """Parse JSON lines into (line number, object); broken lines are quarantined, not raised."""
    rows: list[tuple[int, dict]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ledger.n_input += 1
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            ledger.quarantine_row(lineno, "<line>", f"invalid JSON: {err.msg}", line)
            continue
        if not isinstance(obj, dict):
            ledger.quarantine_row(lineno, "<line>", f"expected an object, got {type(obj).__name__}", line)
            continue
        rows.append((lineno, obj))
    return rows
