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

Two processes that need the same artifact build it once: a builder holds a lock on its key (``flock``
on a file under ``<root>/.locks/``), and the other waits for it, then finds the artifact. A root
``s3://bucket/prefix`` (or ``gs://``) keeps artifacts on object storage (``store_remote``): the
directories here are then a local read-through cache of committed artifacts, and builders on
different machines race through the store's conditional commit instead (one publishes, the other
reuses its artifact).

    store = ArtifactStore(root)
    ref = store.build("demo", "sft_model", None, key_parts, lambda out, work: train(out, checkpoints=work))
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import to_dict
from rlhf_core.errors import MissingInputError
from rlhf_core.store_remote import ObjectStore, cache_dir, is_remote
from rlhf_core.store_verify import META_FILE, hash_files, verify

log = logging.getLogger(__name__)

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
    def from_json(cls, text: str) -> ArtifactRef:
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
            work == work_dir(final, rebuild=False) and (final / META_FILE).exists()
        ):
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
    # Columns and rows as lists: meta.json sorts mapping keys, and a board's column order means something.
    if isinstance(obj, pd.DataFrame):
        return {"__table__": json.loads(obj.to_json(orient="split", index=False))}
    return str(obj)


def _decode_table(obj: dict) -> Any:
    if set(obj) != {"__table__"}:
        return obj
    table = obj["__table__"]  # {"columns", "data"}; a list of records in artifacts written before
    return pd.DataFrame(table["data"], columns=table["columns"]) if isinstance(table, dict) else pd.DataFrame(table)


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
        # ``url``: the root as configured (what another process is given); ``root``: the local directory
        # of artifacts, which for an object-store root is its read-through cache.
        self.remote = ObjectStore(str(root)) if is_remote(root) else None
        self.url = self.remote.url if self.remote else str(Path(root).resolve())
        self.root = cache_dir(self.url) if self.remote else Path(root).resolve()
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
        if self.remote:
            found = [
                (self._record(base / key), self._found(base / key, key))
                for key in self.remote.committed(self._rel(base))
            ]
            return [ref for _, ref in sorted(found, key=lambda f: f[0]["committed_at"], reverse=True)]
        done = [d for d in base.glob("*") if (d / META_FILE).exists()] if base.is_dir() else []
        done.sort(key=lambda d: (d / META_FILE).stat().st_mtime_ns, reverse=True)
        return [
            ArtifactRef(str(d), json.loads((d / META_FILE).read_text())["content_hash"], d.name, cached=True)
            for d in done
        ]

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
        if not rebuild and (found := self._found(final, key)) is not None:
            return found
        if self.find_only:
            raise NotInStore(f"{final} is not in the store" + (" (to be rebuilt)" if rebuild else ""))
        with self._building(final):
            if not rebuild and (found := self._found(final, key)) is not None:  # built while this one waited
                return found
            return self._build(task, asset, partition, key_parts, build_fn, final, rebuild)

    def _build(
        self,
        task: str,
        asset: str,
        partition: str | None,
        key_parts: dict[str, Any],
        build_fn: Callable[[Path, Path], dict[str, Any]],
        final: Path,
        rebuild: bool,
    ) -> ArtifactRef:
        key = final.name
        remove_abandoned(final.parent)
        work = work_dir(final, rebuild)  # a rebuild's own: the same command resumes it
        with building_in(work), atomic_dir(final, replace=rebuild) as tmp:
            metadata = build_fn(tmp, work)
            content_hash, files = hash_files(tmp)
            origin = {"task": task, "asset": asset, "partition": partition}
            meta = {
                "key": key,
                "key_parts": key_parts,
                "content_hash": content_hash,
                "metadata": metadata,
                "files": files,
                "origin": origin,
            }
            write_json_atomic(tmp / META_FILE, meta)
        if rebuild:
            _rebuilt.add(final)
        _remove_if_idle(work)
        # A concurrent build of the same key may have finished first: its artifact is the one in place.
        content_hash = json.loads((final / META_FILE).read_text())["content_hash"]
        if self.remote:
            record = self.remote.publish(self._rel(final), final, replace=rebuild)
            if record["content_hash"] != content_hash:  # another machine committed it first: use its artifact
                return self._found(final, key)
        return ArtifactRef(str(final), content_hash, key, cached=False)

    def localize(self, path: str | Path) -> None:
        """Make sure the artifact at ``path`` (a ref's path) is on this machine: on an object store, a
        machine with a cache of its own (a pod) fetches it. A local store has nothing to fetch."""
        final = Path(path)
        if self.remote is None or (final / META_FILE).exists():
            return
        if not final.is_relative_to(self.root) or self._found(final, final.name) is None:
            raise MissingInputError(
                f"{final} is not a committed artifact of {self.url} (cache {self.root}); "
                "every machine needs the same RLHF_CACHE"
            )

    def write_record(self, rel: str, data: dict[str, Any]) -> Path:
        """A small JSON file beside the artifacts (the IO manager's refs, a launch's resolved config), on the
        object store too when there is one, so that a run or a pod on another machine reads it. Keys keep
        their order (a config's sources and scorers are read in it). Returns its local path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
        if self.remote:
            self.remote.put_json(rel, data)
        return path

    def read_record(self, rel: str) -> dict[str, Any] | None:
        if self.remote:
            return self.remote.get_json(rel)
        return json.loads((self.root / rel).read_text()) if (self.root / rel).exists() else None

    def localize_record(self, path: str | Path) -> None:
        """Make sure a record at ``path`` (under this store's local root) is on this machine (a pod)."""
        path = Path(path)
        if self.remote is None or path.exists():
            return
        data = self.read_record(self._rel(path)) if path.is_relative_to(self.root) else None
        if data is None:
            raise MissingInputError(f"{path}: not on this machine, nor in {self.url}")
        self.write_record(self._rel(path), data)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _record(self, final: Path) -> dict[str, Any] | None:
        return self.remote.record(self._rel(final)) if self.remote else None

    def _found(self, final: Path, key: str) -> ArtifactRef | None:
        """The stored artifact at ``final``, or None. On an object store only a committed artifact counts;
        it is downloaded into the cache unless the cache holds that content already."""
        if self.remote is None:
            if not (final / META_FILE).exists():
                return None
            return ArtifactRef(
                str(final), json.loads((final / META_FILE).read_text())["content_hash"], key, cached=True
            )
        record = self._record(final)
        if record is None:
            return None
        cached = json.loads((final / META_FILE).read_text())["content_hash"] if (final / META_FILE).exists() else None
        if cached != record["content_hash"]:  # absent, or an older build of a key rebuilt since
            with atomic_dir(final, replace=cached is not None) as tmp:
                self.remote.download(self._rel(final), record, tmp)
        return ArtifactRef(str(final), record["content_hash"], key, cached=True)

    @contextmanager
    def _building(self, final: Path) -> Iterator[None]:
        """Hold the lock on the artifact ``final`` while this process builds it.

        The ranks of one multi-process launch (``WORLD_SIZE`` > 1) build together and take no lock: one
        waiting for another's lock would leave the first stuck in the engine's collectives."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            yield
            return
        lock = self.root / ".locks" / ("__".join(final.relative_to(self.root).parts) + ".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("%s: another process is building it; waiting for it", final)
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield  # the lock goes with the file's closing, also when this process is killed
