"""Turn core metadata (numbers, strings, tables, PNG names) into Dagster metadata values.

A DataFrame becomes a typed table (``TableMetadataValue`` with a ``TableSchema``); a ``legend``
(column -> meaning) describes its columns and is shown as a table of its own. A PNG becomes a
markdown image, which the asset page opens in one click.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

MAX_CELL = 200  # characters of a text cell (a preview row's prompt, a quarantine reason)


def _column_type(dtype: Any) -> str:
    """A pandas dtype as a Dagster table column type (the UI aligns and formats by it)."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "string"


def _cell(value: Any, kind: str) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # a missing value
        return None
    if kind == "float":
        return round(float(value), 4)
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value).replace("\n", " ")[:MAX_CELL]


def table(df: pd.DataFrame, legend: dict[str, str] | None = None) -> dg.TableMetadataValue:
    """A typed Dagster table: one column per DataFrame column with its type and, where ``legend``
    has one, its meaning (the UI shows it in the column's header)."""
    legend = legend or {}
    kinds = {str(c): _column_type(t) for c, t in df.dtypes.items()}
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, kind, description=legend.get(name)) for name, kind in kinds.items()]
    )
    records = [
        dg.TableRecord({name: _cell(v, kinds[name]) for name, v in zip(kinds, row)})
        for row in df.itertuples(index=False)
    ]
    return dg.MetadataValue.table(records, schema)


def to_dagster(meta: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    artifact = Path(meta["artifact"]) if "artifact" in meta else None
    legend = dict(meta.get("legend") or {})  # column -> meaning, or (column, meaning) pairs in column order
    out: dict[str, dg.MetadataValue] = {}
    for key, value in meta.items():
        if key == "summary":
            continue
        if isinstance(value, pd.DataFrame):
            out[key] = table(value, legend)
        elif key == "legend":  # what each column of the asset's table means, as a table of its own
            out[key] = table(pd.DataFrame(list(legend.items()), columns=["column", "meaning"]))
        elif isinstance(value, str) and value.endswith(".png") and artifact is not None:
            png = base64.b64encode((artifact / value).read_bytes()).decode()
            out[key] = dg.MetadataValue.md(f"![{key}](data:image/png;base64,{png})")
        elif key in ("artifact", "exported_to"):
            out[key] = dg.MetadataValue.path(str(value))
        elif isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, (int, float)):
            out[key] = dg.MetadataValue.float(float(value)) if isinstance(value, float) else dg.MetadataValue.int(value)
        elif isinstance(value, (list, dict)):
            out[key] = dg.MetadataValue.json(value)
        else:
            out[key] = dg.MetadataValue.text(str(value))
    return out


def output(ref, meta: dict[str, Any]) -> dg.Output:
    """The asset's output: the ref, its content hash as data version, and the metadata."""
    return dg.Output(ref, data_version=dg.DataVersion(ref.content_hash), metadata=to_dagster(meta))
