"""An artifact store root on object storage (``s3://bucket/prefix``, ``gs://...``), through fsspec.

Object stores have no rename, so an artifact is published in two steps. Its files go under a
prefix of their own, ``<artifact>/uploads/<upload id>/``; then the commit record
``<artifact>/commit.json`` is created last, with a create that fails when the record already
exists (S3 ``PutObject`` with ``If-None-Match: *``). Of two writers of the same artifact exactly one
creates the record; the other deletes its upload and reuses the winner's. An upload cut off by
``kill -9`` has no record and is never read; the next publisher of that artifact deletes it.

Readers trust only committed artifacts: they read the record (the upload it names, the sha256 of
every file) and download those files into a local directory, checking each hash on the way.
``ArtifactStore`` keeps that local copy in its read-through cache (``cache_dir``), so stages go on
reading artifacts as local directories: a GPU pod loads a model from its own disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from rlhf_core.errors import CorruptArtifactError
from rlhf_core.store_verify import META_FILE, sha256_file

COMMIT_FILE = "commit.json"
UPLOADS = "uploads"
SCHEMES = ("s3://", "gs://", "gcs://")


def is_remote(root: str | os.PathLike) -> bool:
    return str(root).startswith(SCHEMES)


def cache_dir(url: str) -> Path:
    """The local read-through cache of a remote root: ``$RLHF_CACHE`` (else ``~/.cache/rlhf``), one
    folder per root, so two stores never share cached files."""
    base = Path(os.environ.get("RLHF_CACHE") or Path.home() / ".cache" / "rlhf").expanduser()
    readable = url.split("://", 1)[1].strip("/").replace("/", "_")[:60]
    return (base / f"{readable}-{hashlib.sha256(url.rstrip('/').encode()).hexdigest()[:8]}").resolve()


class ObjectStore:
    """Committed artifacts under a remote root; ``rel`` is an artifact's path below it (``task/asset/key``)."""

    def __init__(self, url: str):
        import fsspec  # the object-store extra: s3fs, gcsfs

        self.url = url.rstrip("/")
        self.fs, self.base = fsspec.core.url_to_fs(self.url)

    def _path(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def record(self, rel: str) -> dict[str, Any] | None:
        """The artifact's commit record, or None while it is not committed."""
        return self.get_json(f"{rel}/{COMMIT_FILE}")

    def get_json(self, rel: str) -> Any:
        """A small JSON object (a commit record, a ref), or None where there is none."""
        try:
            return json.loads(self.fs.cat_file(self._path(rel)))
        except FileNotFoundError:
            return None

    def put_json(self, rel: str, data: Any) -> None:
        """Write a small JSON object whole (one PUT: a reader sees the old object or the new one)."""
        self.fs.pipe_file(self._path(rel), json.dumps(data, indent=1).encode())

    def committed(self, parent: str) -> list[str]:
        """The names of the committed artifacts directly below ``parent`` (an asset partition's folder)."""
        try:
            records = self.fs.glob(self._path(parent, "*", COMMIT_FILE))
        except FileNotFoundError:
            return []
        return sorted(p.rsplit("/", 2)[-2] for p in records)

    def publish(self, rel: str, folder: Path, replace: bool = False) -> dict[str, Any]:
        """Upload a built artifact directory and commit it; return the record that won.

        ``replace`` (a rebuild) overwrites an existing record instead of deferring to it. Uploads that
        the winning record does not name are deleted: a loser's, or one cut off by a kill.
        """
        meta = json.loads((folder / META_FILE).read_text())
        upload = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        for name in files:
            self.fs.put_file(str(folder / name), self._path(rel, UPLOADS, upload, name))
        record = {
            "upload": upload,
            "content_hash": meta["content_hash"],
            "files": meta["files"],
            "meta_sha256": sha256_file(folder / META_FILE),
            "committed_at": time.time(),
        }
        body = json.dumps(record, indent=1, sort_keys=True).encode()
        try:
            self.fs.pipe_file(self._path(rel, COMMIT_FILE), body, mode="overwrite" if replace else "create")
            won = record
        except FileExistsError:  # a concurrent writer committed first: its artifact is the one
            won = self.record(rel)
            if won is None:
                raise
        self.fs.invalidate_cache()
        self._remove_uploads(rel, keep=won["upload"])
        return won

    def _remove_uploads(self, rel: str, keep: str) -> None:
        try:
            uploads = self.fs.ls(self._path(rel, UPLOADS), detail=False, refresh=True)
        except FileNotFoundError:
            return
        for path in uploads:
            if path.rstrip("/").rsplit("/", 1)[-1] != keep:
                self.fs.rm(path, recursive=True)

    def download(self, rel: str, record: dict[str, Any], dest: Path) -> None:
        """Fetch the committed files into ``dest`` (an empty directory), each checked against the record."""
        expected = {**record["files"], META_FILE: record["meta_sha256"]}
        for name in expected:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
        # one call for all files: fsspec's async filesystems (s3fs, gcsfs) fetch them concurrently
        self.fs.get(
            [self._path(rel, UPLOADS, record["upload"], name) for name in expected],
            [str(dest / name) for name in expected],
        )
        for name, sha in expected.items():
            if sha256_file(dest / name) != sha:
                raise CorruptArtifactError(
                    f"{self.url}/{rel}: {name} does not match the sha256 in its "
                    f"{COMMIT_FILE}; the object store copy is damaged"
                )
