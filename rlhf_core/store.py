"""Content-addressed artifact store with atomic writes.

Every artifact is a directory ``<root>/<task>/<asset>[/<partition>]/<key>/`` where ``key``
hashes everything that determines its content (the stage's version: the config it declares
and a hash of the code it runs; the parents' content hashes). It is built in a temporary
sibling directory and renamed into place, so a directory that exists is complete: a crash
never leaves half an artifact that a later run trusts, and an unchanged re-run finds the
artifact and recomputes nothing. Temporary directories of killed runs are removed.

    store = ArtifactStore(root)
    ref = store.build("demo", "sft_model", None, key_parts, lambda out: train(out))
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from rlhf_core.config import to_dict

META_FILE = "meta.json"


@dataclass(frozen=True)
class ArtifactRef:
    """A small, JSON-able handle on a stored artifact: assets pass these, never weights."""

    path: str
    content_hash: str
    key: str
    cached: bool = False  # True when this run found the artifact instead of building it

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ArtifactRef":
        return cls(**json.loads(text))

    @property
    def dir(self) -> Path:
        return Path(self.path)

    def meta(self) -> dict[str, Any]:
        return json.loads((self.dir / META_FILE).read_text(), object_hook=_decode_table)

    def file(self, name: str) -> Path:
        return self.dir / name


def hash_key(*parts: Any) -> str:
    """Stable short hash of JSON-able parts: config sections, parent hashes, versions."""
    return hashlib.sha256(json.dumps(to_dict(list(parts)), sort_keys=True).encode()).hexdigest()[:16]


def hash_dir(path: Path) -> str:
    """sha256 over relative file names and bytes, excluding meta.json (which holds the hash)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != META_FILE):
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary directory that is renamed to ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():  # a concurrent run finished the same artifact first
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_abandoned(final: Path) -> None:
    """Delete temporary directories of ``final`` whose process is gone (``kill -9``, power loss).

    A temporary name carries the builder's pid; one whose pid is alive may be a concurrent
    build of the same artifact and is left alone.
    """
    for tmp in final.parent.glob(f".tmp-{final.name}-*"):
        pid = tmp.name.removeprefix(f".tmp-{final.name}-").split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _encode_table(obj: Any) -> Any:
    # Metadata may hold small DataFrames (previews, leaderboards); keep them tables across a reload.
    if isinstance(obj, pd.DataFrame):
        return {"__table__": json.loads(obj.to_json(orient="records"))}
    return str(obj)


def _decode_table(obj: dict) -> Any:
    return pd.DataFrame(obj["__table__"]) if set(obj) == {"__table__"} else obj


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_encode_table))
    os.replace(tmp, path)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a Parquet table atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def location(self, task: str, asset: str, partition: str | None, key: str) -> Path:
        base = self.root / task / asset
        return (base / partition if partition else base) / key

    def previous(self, task: str, asset: str, partition: str | None) -> list[ArtifactRef]:
        """Every complete artifact of this asset partition, newest first (for incremental stages)."""
        base = self.location(task, asset, partition, "")
        done = [d for d in base.glob("*") if (d / META_FILE).exists()] if base.is_dir() else []
        done.sort(key=lambda d: (d / META_FILE).stat().st_mtime_ns, reverse=True)
        return [ArtifactRef(str(d), json.loads((d / META_FILE).read_text())["content_hash"], d.name, cached=True)
                for d in done]

    def build(
        self,
        task: str,
        asset: str,
        partition: str | None,
        key_parts: dict[str, Any],
        build_fn: Callable[[Path, Path], dict[str, Any]],
    ) -> ArtifactRef:
        """Return the artifact for ``key_parts``, building it with ``build_fn(out, work)`` if absent.

        ``build_fn`` writes its files into ``out`` (a temporary directory renamed into place on
        success) and returns metadata (metrics, counts), saved to meta.json with the key parts
        and the content hash. ``work`` is a stable scratch directory for resumable checkpoints;
        it survives a crash and is removed once the artifact is complete.
        """
        key = hash_key(key_parts)
        final = self.location(task, asset, partition, key)
        if (final / META_FILE).exists():
            meta = json.loads((final / META_FILE).read_text())
            return ArtifactRef(str(final), meta["content_hash"], key, cached=True)
        work = final.with_name(f"{key}.work")
        work.mkdir(parents=True, exist_ok=True)
        with atomic_dir(final) as tmp:
            metadata = build_fn(tmp, work)
            content_hash = hash_dir(tmp)
            meta = {"key": key, "key_parts": key_parts, "content_hash": content_hash, "metadata": metadata}
            write_json_atomic(tmp / META_FILE, meta)
        shutil.rmtree(work, ignore_errors=True)
        return ArtifactRef(str(final), content_hash, key, cached=False)
