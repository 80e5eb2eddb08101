"""Responses that arrive over time: files dropped into ``<folder>/<YYYY-MM-DD>/*.jsonl``.

Each line is ``{"prompt": str, "completion": str[, "id": str]}``. A day folder is one date
partition of the incoming annotation; the sensor notices a day whose files changed by its
fingerprint, and the day is read back into rows (bad lines quarantined, never dropped).

    days = day_folders(Path("data/incoming/demo"))   # {"2026-11-22": Path(...)}
    fingerprint(days["2026-11-22"])                  # changes when a file is added or rewritten
    read_day(days["2026-11-22"]).kept                 # row_id, prompt, completion
"""

from __future__ import annotations

import datetime
import hashlib
import io
from pathlib import Path

import pandas as pd

from rlhf_core.data.quarantine import CleanResult, Ledger, parse_jsonl
from rlhf_core.data.rows import RowError, get_str

INCOMING_COLUMNS = ["row_id", "prompt", "completion"]


def day_folders(folder: Path) -> dict[str, Path]:
    """The sub-folders named as a date (others are ignored), by date."""
    if not folder.is_dir():
        return {}
    days = {}
    for sub in folder.iterdir():
        try:
            datetime.date.fromisoformat(sub.name)
        except ValueError:
            continue
        if sub.is_dir():
            days[sub.name] = sub
    return dict(sorted(days.items()))


def _files(day: Path) -> list[Path]:
    return sorted(day.glob("*.jsonl"))


def fingerprint(day: Path) -> str:
    """Hash of the day's file names, sizes and modification times: cheap enough for a sensor tick."""
    digest = hashlib.sha256()
    for f in _files(day):
        st = f.stat()
        digest.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def content_fingerprint(day: Path) -> str:
    """Hash of the day's file names and bytes: what the annotation artifact is keyed by."""
    digest = hashlib.sha256()
    for f in _files(day):
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def read_day(day: Path) -> CleanResult:
    """Every line of every ``*.jsonl`` file of the day; a row without an id gets ``<file>:<line>``.

    A file that is not UTF-8 text is quarantined whole (row 0, field ``<file>``, the reason naming
    the first bad byte): its lines cannot be told apart reliably, and the day's other files go on."""
    kept, quarantined, n_input = [], [], 0
    for path in _files(day):
        ledger = Ledger(source=str(path))
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            ledger.n_input += 1
            ledger.quarantine_row(
                0,
                "<file>",
                f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} "
                f"(line {line}); the whole file is set aside",
                data[:200].decode("utf-8", "replace"),
            )
            text = ""
        for lineno, obj in parse_jsonl(io.StringIO(text), ledger):
            try:
                row_id = obj.get("id", f"{path.name}:{lineno}")
                if not isinstance(row_id, str) or not row_id:
                    raise RowError("id", f"expected a non-empty string, got {row_id!r}")
                kept.append((row_id, get_str(obj, "prompt", allow_empty=True), get_str(obj, "completion")))
            except RowError as err:
                ledger.quarantine_row(lineno, err.field, err.reason, obj)
        quarantined += ledger.quarantine
        n_input += ledger.n_input
    ledger = Ledger(source=str(day), n_input=n_input, quarantine=quarantined)
    return ledger.result(pd.DataFrame(kept, columns=INCOMING_COLUMNS))
