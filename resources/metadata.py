"""Turn core metadata (numbers, strings, tables, PNG names) into Dagster metadata values."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd


def _markdown_table(df: pd.DataFrame) -> str:
    cells = df.astype(object).where(df.notna(), "")
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")[:120]
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def to_dagster(meta: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    artifact = Path(meta["artifact"]) if "artifact" in meta else None
    out: dict[str, dg.MetadataValue] = {}
    for key, value in meta.items():
        if key == "summary":
            continue
        if isinstance(value, pd.DataFrame):
            out[key] = dg.MetadataValue.md(_markdown_table(value))
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
