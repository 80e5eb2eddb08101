"""What every stage shares: its declaration, the config view it is handed, its version and store key.

A stage declares the config paths it reads (``"sft"``, ``"reward_model.train.max_length"``,
``"sources.world"``). It is then handed a view of the task config that answers only those paths
(reading anything else raises ``UndeclaredConfigError``), and its version, the hash of the
declared values and of the code it runs (``rlhf_core.codehash``), is both its Dagster code version
(the two hashes apart) and the root of its store key (one hash of both). One declaration, so the two
can never disagree or miss a read.

    @stage(lambda task: ["sft", "seed"])
    def sft_model(ctx: Context, tok: ArtifactRef, data: ArtifactRef) -> Result:
        cfg = ctx.cfg.sft                                  # ctx.cfg.policy would raise
        return ctx.build("sft_model", None, {"tokenizer": tok, "data": data}, build_fn)

    sft_model(task, store, tok, data)       # called with the whole TaskConfig
    sft_model.version(task)                 # the asset's code version
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from rlhf_core.codehash import code_hash
from rlhf_core.config import TaskConfig, to_dict
from rlhf_core.data.quarantine import CleanResult
from rlhf_core.errors import MissingInputError
from rlhf_core.progress import labelled
from rlhf_core.store import ArtifactRef, ArtifactStore, hash_key, read_table, write_table
from rlhf_core.store_verify import META_FILE, is_artifact

TABLE = "table.parquet"
QUARANTINE = "quarantine.parquet"
ALWAYS = ("task",)  # the task's name is the store's first path component: every stage may read it
Result = tuple[ArtifactRef, dict[str, Any]]


class UndeclaredConfigError(RuntimeError):
    """A stage read a config path it did not declare (its key would miss it)."""


class ConfigView:
    """Read-only access to the declared paths of a config; dataclass fields by attribute, dict keys by item."""

    def __init__(self, obj: Any, reads: frozenset[str], stage: str, prefix: str = ""):
        self._obj, self._reads, self._stage, self._prefix = obj, reads, stage, prefix

    def _child(self, name: str, value: Any) -> Any:
        path = f"{self._prefix}.{name}" if self._prefix else name
        if any(path == r or path.startswith(r + ".") for r in self._reads):
            return value
        if any(r.startswith(path + ".") for r in self._reads):
            return None if value is None else ConfigView(value, self._reads, self._stage, path)
        raise UndeclaredConfigError(f"stage {self._stage!r} reads {path!r} but declares only {sorted(self._reads)}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name, getattr(self._obj, name))

    def __getitem__(self, key: str) -> Any:
        return self._child(str(key), self._obj[key])

    # A mapping section (sources, scorers) lists its keys freely: a stage that declares entries by
    # name re-declares (and re-keys) when an entry is added or removed.
    def __iter__(self):
        return iter(self._obj)

    def __contains__(self, key: str) -> bool:
        return key in self._obj

    def __len__(self) -> int:
        return len(self._obj)

    def __bool__(self) -> bool:  # a present section is true, as the config object itself is
        return bool(self._obj) if isinstance(self._obj, dict) else True

    def items(self):
        return [(k, self[k]) for k in self._obj]


def resolve(task: TaskConfig, path: str) -> Any:
    """The value at a dotted config path (None where a section is absent)."""
    value: Any = task
    for part in path.split("."):
        if value is None:
            return None
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


@dataclass(frozen=True)
class Context:
    """What a stage body gets: the config view, the store, and how to build under its own key."""

    task: str
    cfg: Any  # ConfigView over the TaskConfig
    store: ArtifactStore
    version: str

    def build(self, asset: str, partition: str | None, parents: dict[str, ArtifactRef | None],
              build_fn: Callable[[Path, Path], dict[str, Any]], **extra: Any) -> Result:
        """The artifact keyed by this stage's version, the parents' content and ``extra``."""
        hashes = {k: v.content_hash for k, v in sorted(parents.items()) if v is not None}
        key = {"version": self.version, "parents": hashes, **extra}

        def build_from_whole_parents(out: Path, work: Path) -> dict[str, Any]:
            for ref in parents.values():
                if ref is not None:
                    require_whole(ref, self.store.root)
            with labelled(asset + (f" [{partition}]" if partition else "")):  # its progress bars name it
                return build_fn(out, work)

        return done(self.store.build(self.task, asset, partition, key, build_from_whole_parents))


def require_whole(ref: ArtifactRef, root: Path) -> None:
    """A parent about to be read is a whole artifact: a folder deleted or emptied after it was built
    fails here, naming it and its rebuild command, not in a loader that takes the missing local path
    for a hub id. (A child found in the store never reads its parents, so this runs only to build.)"""
    if is_artifact(ref.path):
        return
    try:
        task, asset = Path(ref.path).resolve().relative_to(root).parts[:2]
    except ValueError:  # not under this store: name the folder only
        raise MissingInputError(f"parent artifact {ref.path} is gone or incomplete (no {META_FILE})") from None
    raise MissingInputError(f"parent artifact {task}/{asset} ({ref.path}) is gone or incomplete (no {META_FILE}); "
                            f"rebuild it: rlhf run {task} --rebuild {asset}")


class Stage:
    """A stage function with its declaration; call it with ``(task, store, *args)``."""

    def __init__(self, fn: Callable[..., Result], reads: Callable[..., Iterable[str]]):
        self.fn, self.reads_fn, self.name = fn, reads, fn.__name__
        self._ident = len(inspect.signature(reads).parameters) - 1  # args that name the asset (a source)
        functools.update_wrapper(self, fn)

    def reads(self, task: TaskConfig, *ident: Any) -> list[str]:
        return sorted(set(self.reads_fn(task, *ident[: self._ident])) | set(ALWAYS))

    def _declared(self, task: TaskConfig, *ident: Any) -> dict[str, Any]:
        return {p: to_dict(resolve(task, p)) for p in self.reads(task, *ident)}

    def version(self, task: TaskConfig, *ident: Any) -> str:
        """The asset's code version, ``config:<hash> code:<hash>``: the declared config values and the
        code this stage runs, apart, so a stale asset can say which of the two changed."""
        return f"config:{hash_key(self.name, self._declared(task, *ident))} code:{code_hash(self.fn)[:16]}"

    def key_version(self, task: TaskConfig, *ident: Any) -> str:
        """The root of the store key: a hash of the same declared values and code as ``version``."""
        return hash_key(self.name, self._declared(task, *ident), code_hash(self.fn))

    def __call__(self, task: TaskConfig, store: ArtifactStore, *args: Any, **kwargs: Any) -> Result:
        paths = frozenset(self.reads(task, *args))
        ctx = Context(task.task, ConfigView(task, paths, self.name), store, self.key_version(task, *args))
        return self.fn(ctx, *args, **kwargs)


def stage(reads: Callable[..., Iterable[str]]) -> Callable[[Callable[..., Result]], Stage]:
    """Declare the config paths a stage reads: ``reads(task[, name])`` -> paths."""
    return lambda fn: Stage(fn, reads)


def done(ref: ArtifactRef) -> Result:
    return ref, {**ref.meta()["metadata"], "artifact": ref.path, "content_hash": ref.content_hash,
                 "cached": ref.cached}


def table(ref: ArtifactRef) -> pd.DataFrame:
    return read_table(ref.file(TABLE))


def write_clean(result: CleanResult, out: Path) -> dict[str, Any]:
    write_table(result.kept, out / TABLE)
    write_table(result.quarantined, out / QUARANTINE)
    return {**result.counts(), "quarantine_reasons": result.quarantined["reason"].value_counts().to_dict()}


def load_tok(ref: ArtifactRef):
    from rlhf_core.config import ModelSource
    from rlhf_core.models.load import load_tokenizer

    return load_tokenizer(ModelSource(path=ref.path))


def train_rows(ref: ArtifactRef) -> pd.DataFrame:
    rows = table(ref)
    return rows[rows["split"] == "train"].reset_index(drop=True) if "split" in rows else rows
