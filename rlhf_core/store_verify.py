"""Per-file hashes of an artifact, and the check that a file still matches them before it is read.

``meta.json`` records the sha256 of every file it covers (``files``). A stage that reads a file
checks it first (``ArtifactRef.file``); a model directory is checked whole before it loads. A
file that was truncated, edited or deleted after its artifact was built fails with the artifact's
path, the file and the command that rebuilds it, instead of a confusing error (or silently wrong
numbers) further on. A file checked once is not hashed again in this process while its
modification time and size stay the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from rlhf_core.errors import CorruptArtifactError, MissingInputError

META_FILE = "meta.json"
CHUNK = 1 << 20

# file path -> (mtime_ns, size, sha256) of files that matched their artifact's record in this process
_checked: dict[str, tuple[int, int, str]] = {}


def content_files(path: Path) -> list[Path]:
    """Every file of an artifact directory but ``meta.json``, in a stable order."""
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != META_FILE)


def hash_files(path: Path) -> tuple[str, dict[str, str]]:
    """``(content hash, {relative name: sha256})`` of a directory, reading each file once.

    The content hash (sha256 over names and bytes, 16 hex digits) is what keys descendants.
    """
    digest, files = hashlib.sha256(), {}
    for file in content_files(path):
        name = file.relative_to(path).as_posix()
        digest.update(name.encode())
        own = hashlib.sha256()
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
                own.update(chunk)
        files[name] = own.hexdigest()
    return digest.hexdigest()[:16], files


def sha256_file(path: Path) -> str:
    own = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            own.update(chunk)
    return own.hexdigest()


def rebuild_command(meta: dict) -> str:
    origin = meta.get("origin") or {}
    return f"rlhf run {origin.get('task', '<task>')} --rebuild {origin.get('asset', '<asset>')}"


def verify(folder: Path, names: Iterable[str] | None = None) -> None:
    """Check ``names`` (files or sub-folders of the artifact; None: all of it) against ``meta.json``.

    An artifact built before per-file hashes were recorded has nothing to check against and passes.
    """
    folder = Path(folder)
    if not (folder / META_FILE).is_file():
        raise MissingInputError(
            f"artifact {folder} is gone or incomplete (no {META_FILE}); run the asset that builds it again"
        )
    meta = json.loads((folder / META_FILE).read_text())
    recorded: dict[str, str] | None = meta.get("files")
    if recorded is None:
        return
    wanted = (
        list(recorded)
        if names is None
        else [f for name in names for f in recorded if f == name or f.startswith(name.rstrip("/") + "/")]
    )
    for name in wanted:
        _check_file(folder, name, recorded[name], meta)


def _check_file(folder: Path, name: str, expected: str, meta: dict) -> None:
    path = folder / name
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CorruptArtifactError(
            f"artifact {folder}: {name} is missing; rebuild it: {rebuild_command(meta)}"
        ) from None
    seen = (st.st_mtime_ns, st.st_size, expected)
    if _checked.get(str(path)) == seen:
        return
    if sha256_file(path) != expected:
        raise CorruptArtifactError(
            f"artifact {folder}: {name} ({st.st_size} bytes) does not match the sha256 in its "
            f"{META_FILE} (changed or truncated after it was built); rebuild it: "
            f"{rebuild_command(meta)}"
        )
    _checked[str(path)] = seen


def is_artifact(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()
