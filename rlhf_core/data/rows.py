"""Reading raw source files and validating their rows, shared by every loader.

A loader parses each raw row with small field getters that raise ``RowError``; ``parse_rows``
turns that into a quarantine entry naming the row and field, so one bad row never sinks the
source. Whole-file problems (a missing file, a JSON document that does not parse) raise
``SourceError`` naming the file (and line/column when the parser gives one).
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rlhf_core.config import SourceConfig
from rlhf_core.data.quarantine import CleanResult, Ledger, SourceError, read_jsonl
from rlhf_core.data.registry import source_root


class RowError(ValueError):
    """One row is unusable; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


# ----------------------------------------------------------------------------- files


def source_files(source: SourceConfig, key: str) -> list[Path]:
    """The files a source's ``files[key]`` names (a path or glob inside the source root).

    Raises:
        SourceError: the key is not configured or matches no file.
    """
    if key not in source.files:
        raise SourceError(source.loader, f"no file configured under files.{key}; have {sorted(source.files)}")
    root = source_root(source)
    pattern = source.files[key]
    paths = sorted(root.glob(pattern)) if any(c in pattern for c in "*?[") else [root / pattern]
    missing = [p for p in paths if not p.is_file()]
    if not paths or missing:
        raise SourceError(str(missing[0] if missing else root / pattern), "no such file")
    return paths


def source_file(source: SourceConfig, key: str) -> Path:
    """The single file named by ``files[key]``."""
    (path,) = source_files(source, key)
    return path


def load_json_document(path: Path) -> Any:
    """Parse a whole-file JSON document; a syntax error makes the file unusable."""
    try:
        with _open_text(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise SourceError(str(path), f"not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from None


def read_json_lines(path: Path, ledger: Ledger) -> list[tuple[int, dict]]:
    """JSON lines, plain or gzip-compressed; broken lines are quarantined by ``read_jsonl``."""
    if path.suffix != ".gz":
        return read_jsonl(str(path), ledger)
    # Decompress beside the reader so gzip and plain files share one line parser.
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl") as tmp:
        with gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        return read_jsonl(tmp.name, ledger)


def read_parquet_source(
    source: SourceConfig, parse: Callable[[int, Any], dict | None], columns: list[str]
) -> CleanResult:
    """Parse the rows of the Parquet files of every ``files`` split (a key is a split name).

    Args:
        source: The source; each ``files`` value is a path or glob.
        parse: ``parse(row_number, row_dict)`` as for ``parse_rows``; ``split`` is added after.
        columns: Columns of the kept table.
    """
    import pandas as pd

    ledger = Ledger(source.hub_id or source.path or source.loader)
    records = []
    for split in source.files:
        for path in source_files(source, split):
            part = Ledger(str(path))
            rows = count_rows(part, pd.read_parquet(path).to_dict("records"))
            records += [{**rec, "split": split} for rec in parse_rows(rows, parse, part)]
            absorb(ledger, part)
    return ledger.result(pd.DataFrame(records, columns=columns))


def _open_text(path: Path):
    try:
        return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")
    except OSError as err:
        raise SourceError(str(path), f"cannot open: {err.strerror}") from None


def absorb(into: Ledger, part: Ledger) -> None:
    """Add one file's ledger to the loader's ledger (quarantine rows keep their file name)."""
    into.n_input += part.n_input
    into.quarantine.extend(part.quarantine)
    into.dropped.update(part.dropped)
    into.flagged.update(part.flagged)


def parse_rows(rows: Iterable[tuple[int, Any]], parse: Callable[[int, Any], dict | None], ledger: Ledger) -> list[dict]:
    """Apply ``parse(row_number, raw)`` to each row; a ``RowError`` quarantines that row.

    ``parse`` returns the clean record, or ``None`` after it recorded a rule drop itself.
    """
    out = []
    for row_no, raw in rows:
        try:
            rec = parse(row_no, raw)
        except RowError as err:
            ledger.quarantine_row(row_no, err.field, err.reason, raw)
            continue
        if rec is not None:
            out.append(rec)
    return out


def json_list_files(source: SourceConfig, noun: str) -> Iterator[tuple[str, Ledger, list[tuple[int, Any]]]]:
    """``(files key, file ledger, numbered items)`` of the JSON-list file under every ``files`` key."""
    for key in source.files:
        path = source_file(source, key)
        items = load_json_document(path)
        if not isinstance(items, list):
            raise SourceError(str(path), f"expected a JSON list of {noun}, got {type(items).__name__}")
        part = Ledger(str(path))
        yield key, part, count_rows(part, items)


def count_rows(ledger: Ledger, items: list) -> list[tuple[int, Any]]:
    """Number the items of an in-memory list (1-based) and count them as input."""
    ledger.n_input += len(items)
    return list(enumerate(items, start=1))


# ----------------------------------------------------------------------------- fields


def get_field(obj: Any, name: str) -> Any:
    if not isinstance(obj, dict):
        raise RowError("<row>", f"expected an object, got {type(obj).__name__}")
    if name not in obj:
        raise RowError(name, "missing field")
    return obj[name]


def get_str(obj: Any, name: str, *, allow_empty: bool = False) -> str:
    value = get_field(obj, name)
    if not isinstance(value, str):
        raise RowError(name, f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RowError(name, "empty text")
    return value


def get_number(obj: Any, name: str, *, allow_nan: bool = False) -> float:
    return check_number(get_field(obj, name), name, allow_nan=allow_nan)


def check_number(value: Any, name: str, *, allow_nan: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowError(name, f"expected a number, got {type(value).__name__}")
    if not allow_nan and math.isnan(value):
        raise RowError(name, "NaN")
    return float(value)


def get_list(obj: Any, name: str, *, length: int | None = None) -> list:
    value = get_field(obj, name)
    if not isinstance(value, list):
        raise RowError(name, f"expected a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise RowError(name, f"expected {length} items, got {len(value)}")
    return value


def check_str_list(values: list, name: str, *, allow_empty: bool = False) -> list[str]:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise RowError(f"{name}[{i}]", f"expected a string, got {type(v).__name__}")
        if not allow_empty and not v.strip():
            raise RowError(f"{name}[{i}]", "empty text")
    return values
