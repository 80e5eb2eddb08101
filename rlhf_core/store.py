"""Content-addressed artifact store with atomic writes.

Every artifact is a directory ``<root>/<task>/<asset>[/<partition>]/<key>/`` where ``key``
hashes everything that determines its content (the stage's version: the config it declares
and a hash of the code it runs; the parents' content hashes). It is built in a temporary
sibling directory and renamed into place, so a directory that exists is complete: a crash
never leaves half an artifact that a later run trusts, and an unchanged re-run finds the
artifact and recomputes nothing. A build's checkpoints go to a scratch folder the same command
finds again (``work_dir``), a rebuild's too; temporary directories of killed runs, and scratch folders
no build will resume, are removed once no live process holds them (``remove_abandoned``).
``meta.json`` records a sha256 per file, checked when a stage reads the file (``store_verify``);
a store made with ``rebuild={"sft_model"}`` builds those assets again even where they exist, and one
made with ``find_only=True`` returns what exists and raises ``NotInStore`` instead of building (a
launcher asks it first, through the stage's own key computation, before it starts a process).

    store = ArtifactStore(root)
    ref = store.build("demo", "sft_model", None, key_parts, lambda out: train(out))
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from rlhf_core.config import to_dict
from rlhf_core.store_verify import META_FILE, hash_files, verify

# Artifacts rebuilt by this process: a store asked to rebuild an asset does so once per artifact.
_rebuilt: set[Path] = set()


class NotInStore(LookupError):
    """A ``find_only`` store has no artifact for the key asked for: it would have to be built."""


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
        """The path of a file (or sub-folder) to read, checked against the hashes in ``meta.json``."""
        verify(self.dir, [name])
        return self.dir / name

    def checked_dir(self) -> Path:
        """The artifact's directory, every file checked against ``meta.json``: for readers of the whole."""
        verify(self.dir)
        return self.dir


def hash_key(*parts: Any) -> str:
    """Stable short hash of JSON-able parts: config sections, parent hashes, versions."""
    return hashlib.sha256(json.dumps(to_dict(list(parts)), sort_keys=True).encode()).hexdigest()[:16]


def hash_dir(path: Path) -> str:
    """sha256 over relative file names and bytes, excluding meta.json (which holds the hash)."""
    return hash_files(path)[0]


@contextmanager
def atomic_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that is renamed to ``final`` only if the block succeeds.

    ``replace``: an existing ``final`` (a rebuild) is swapped out; otherwise it wins, as the
    work of a concurrent run that finished the same artifact first. The caller holds a scratch
    folder of the key (``building_in``), which keeps a sweep off the temporary directory.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / _tmp_name(final.name)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists() and replace:
            old = final.parent / _tmp_name(final.name, "old")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        elif final.exists():
            shutil.rmtree(tmp)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tmp_name(name: str, tag: str = "") -> str:
    """``.tmp-<name>-<pid>-<tag><random>``: unique per writer (the pid is for a person looking)."""
    return f".tmp-{name}-{os.getpid()}-{tag}{uuid.uuid4().hex[:8]}"


def remove_abandoned(folder: Path) -> None:
    """Delete what builds in the folder of an asset (partition) left and nothing will use again.

    - ``.tmp-<key>-*`` (half-written artifacts) when no live process holds a scratch folder of that key:
      a build holds its scratch folder's lock for as long as its temporary directory exists.
    - ``*.work`` scratch folders that no build will resume (``work_dir``) and that no live process
      holds: a build's whose artifact is now complete, a rebuild's whose artifact has since been
      replaced. A killed build's own folder stays: the same command resumes from its checkpoints.
    """
    if not folder.is_dir():
        return
    for tmp in folder.glob(".tmp-*"):
        key = tmp.name.removeprefix(".tmp-").split("-")[0]
        if not any(_held(work) for work in folder.glob(f"{key}.*work")):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
    for work in folder.glob("*.work"):
        final = folder / work.name.split(".")[0]
        if work not in (work_dir(final, rebuild=False), work_dir(final, rebuild=True)) or (
                work == work_dir(final, rebuild=False) and (final / META_FILE).exists()):
            _remove_if_idle(work)


def work_dir(final: Path, rebuild: bool) -> Path:
    """The scratch folder for checkpoints of a build of ``final``, found again by the same command.

    A build's is ``<key>.work``. A rebuild's is its own, ``<key>.rebuild-<tag>.work``, where the tag
    names the artifact it replaces (its content hash and when its ``meta.json`` was written; ``new``
    where there is none): a rebuild never resumes from a plain build's checkpoints, a killed rebuild
    run again finds its own, and a rebuild after a completed one starts from scratch, as the
    artifact it replaces is then another.
    """
    if not rebuild:
        return final.with_name(f"{final.name}.work")
    try:
        meta = final / META_FILE
        tag = hash_key(json.loads(meta.read_text())["content_hash"], meta.stat().st_mtime_ns)[:8]
    except (OSError, ValueError, KeyError):
        tag = "new"
    return final.with_name(f"{final.name}.rebuild-{tag}.work")


# The liveness marker of a scratch folder: every process building into it (each rank of a multi-process
# run) holds a shared flock on this file; a sweep removes the folder only under an exclusive one.
LOCK_FILE = ".builders.lock"


@contextmanager
def building_in(work: Path) -> Iterator[Path]:
    """Create ``work`` and hold a shared lock on it while the block runs (released if the process dies)."""
    while True:
        work.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(work / LOCK_FILE, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:  # a sweep removed the folder in between
            continue
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.fstat(fd).st_ino == os.stat(work / LOCK_FILE).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # locked a file a sweep had just removed with its folder: again
    try:
        yield work
    finally:
        os.close(fd)


def _held(work: Path) -> bool:
    """Whether a live process builds into ``work`` (holds its lock)."""
    try:
        fd = os.open(work / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _remove_if_idle(work: Path) -> None:
    try:
        fd = os.open(work / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    except FileNotFoundError:
        return  # removed already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return  # a live builder holds it
    try:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        os.close(fd)


def _encode_table(obj: Any) -> Any:
    # Metadata may hold small DataFrames (previews, leaderboards); keep them tables across a reload.
    if isinstance(obj, pd.DataFrame):
        return {"__table__": json.loads(obj.to_json(orient="records"))}
    return str(obj)


def _decode_table(obj: dict) -> Any:
    return pd.DataFrame(obj["__table__"]) if set(obj) == {"__table__"} else obj


def write_json_atomic(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=_encode_table)
    _write_atomic(path, lambda tmp: tmp.write_text(text))


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a Parquet table atomically."""
    _write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def _write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(_tmp_name(path.name))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:  # an error or an interrupt: no temporary file left behind
        tmp.unlink(missing_ok=True)
        raise


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


class ArtifactStore:
    def __init__(self, root: str | Path, rebuild: Iterable[str] = (), find_only: bool = False):
        self.root = Path(root).resolve()
        self.rebuild = frozenset(rebuild)  # asset names built again even where the store has them
        self.find_only = find_only  # build() raises NotInStore rather than build

    def location(self, task: str, asset: str, partition: str | None, key: str) -> Path:
        base = self.root / task / asset
        return (base / partition if partition else base) / key

    def previous(self, task: str, asset: str, partition: str | None) -> list[ArtifactRef]:
        """Every complete artifact of this asset partition, newest first (for incremental stages)."""
        base = self.location(task, asset, partition, "")
        if asset in self.rebuild:  # a rebuild starts from nothing, not from what it replaces
            return []
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
        and the content hash. ``work`` is a stable scratch directory for resumable checkpoints
        (``work_dir``: a rebuild has its own); it survives a crash, so the same command resumes,
        and is removed once the artifact is complete.
        """
        key = hash_key(key_parts)
        final = self.location(task, asset, partition, key)
        rebuild = asset in self.rebuild and final not in _rebuilt
        if (final / META_FILE).exists() and not rebuild:
            meta = json.loads((final / META_FILE).read_text())
            return ArtifactRef(str(final), meta["content_hash"], key, cached=True)
        if self.find_only:
            raise NotInStore(f"{final} is not in the store" + (" (to be rebuilt)" if rebuild else ""))
        remove_abandoned(final.parent)
        work = work_dir(final, rebuild)  # a rebuild's own: the same command resumes it
        with building_in(work), atomic_dir(final, replace=rebuild) as tmp:
            metadata = build_fn(tmp, work)
            content_hash, files = hash_files(tmp)
            origin = {"task": task, "asset": asset, "partition": partition}
            meta = {"key": key, "key_parts": key_parts, "content_hash": content_hash, "metadata": metadata,
                    "files": files, "origin": origin}
            write_json_atomic(tmp / META_FILE, meta)
        if rebuild:
            _rebuilt.add(final)
        _remove_if_idle(work)
        # A concurrent build of the same key may have finished first: its artifact is the one in place.
        content_hash = json.loads((final / META_FILE).read_text())["content_hash"]
        return ArtifactRef(str(final), content_hash, key, cached=False)
