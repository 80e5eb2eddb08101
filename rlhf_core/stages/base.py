"""What every stage shares: its declaration, the config view it is handed, its version and store key.

A stage is one declaration, the decorated function: its name is the function's, its inputs are
the function's typed parameters after ``ctx`` (``ArtifactRef`` an artifact, ``ArtifactRef | None``
an optional one, ``dict[str, ArtifactRef]`` a mapping of artifacts, ``str`` / ``int`` a plain
argument such as the algorithm), and the decorator adds the rest:

- ``reads(task[, partition])``: the config paths it reads (``"sft"``, ``"reward_model.train.max_length"``);
  with a ``partition`` parameter they are read per partition (one per RM, algorithm, source), whose
  names ``each(task)`` lists;
- ``uses(task[, partition])``: registry entries the config names (a loader, a scorer, an algorithm's
  trainer) whose code the stage runs but cannot reach by import (``rlhf_core.registry``);
- ``spreads``: whether it trains through the engine's prepared model, which spreads over the
  launcher's processes (a bool, or ``(task, partition) -> bool``).

It is then handed a view of the task config that answers only the declared paths (reading anything
else raises ``UndeclaredConfigError``), and its version, the hash of the declared values and of the
code it runs (``rlhf_core.codehash``: the function, what it imports, and the entries it uses), is
both its Dagster code version (the two hashes apart; over every partition for a partitioned asset)
and the root of its store key (one hash of both, per partition). The stage command's flags
(``rlhf_core.cli.stage``) and the launcher's call (``resources.launcher``) come from the same
declaration, so none of them can disagree or miss a read.

    @stage(lambda task: ["sft", "seed"], spreads=True)
    def sft_model(ctx: Context, tok: ArtifactRef, data: ArtifactRef) -> Result:
        cfg = ctx.cfg.sft                                  # ctx.cfg.policy would raise
        return ctx.build("sft_model", None, {"tokenizer": tok, "data": data}, build_fn)

    sft_model(task, store, tok, data)       # called with the whole TaskConfig
    sft_model.version(task)                 # the asset's code version
    sft_model.inputs                        # (Input("tok", "artifact"), Input("data", "artifact"))
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from rlhf_core.codehash import code_hash
from rlhf_core.config import TaskConfig, to_dict
from rlhf_core.data.quarantine import CleanResult
from rlhf_core.errors import MissingInputError
from rlhf_core.progress import labelled
from rlhf_core.seeding import seed_everything
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

    def values(self):
        return [self[k] for k in self._obj]


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

    def build(
        self,
        asset: str,
        partition: str | None,
        parents: dict[str, ArtifactRef | None],
        build_fn: Callable[[Path, Path], dict[str, Any]],
        **extra: Any,
    ) -> Result:
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
    raise MissingInputError(
        f"parent artifact {task}/{asset} ({ref.path}) is gone or incomplete (no {META_FILE}); "
        f"rebuild it: rlhf run {task} --rebuild {asset}"
    )


InputKind = Literal["artifact", "optional", "mapping", "str", "int"]
INPUT_KINDS: dict[Any, InputKind] = {
    ArtifactRef: "artifact",
    ArtifactRef | None: "optional",
    dict[str, ArtifactRef]: "mapping",
    str: "str",
    int: "int",
}


@dataclass(frozen=True)
class Input:
    """One named input of a stage: an artifact, an optional one, a ``{key: artifact}`` mapping, or a
    plain argument (``str``, ``int``)."""

    name: str
    kind: InputKind


def _inputs(fn: Callable[..., Result]) -> tuple[Input, ...] | None:
    """The stage's inputs from its signature; None when one has a type the command cannot pass
    (a table, a path): such a stage runs only in process."""
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters)[1:]  # after ctx
    kinds = [INPUT_KINDS.get(hints.get(p)) for p in params]
    return None if None in kinds else tuple(Input(p, k) for p, k in zip(params, kinds))


class Stage:
    """A stage function with its declaration; call it with ``(task, store, *args)``."""

    def __init__(
        self,
        fn: Callable[..., Result],
        reads: Callable[..., Iterable[str]],
        each: Callable[[TaskConfig], Iterable[str]] | None = None,
        uses: Callable[..., Iterable[Callable]] | None = None,
        spreads: bool | Callable[..., bool] = False,
    ):
        self.fn, self.reads_fn, self.name = fn, reads, fn.__name__
        self.each, self.uses_fn, self.spreads_decl = each, uses, spreads
        self._ident = len(inspect.signature(reads).parameters) - 1  # args that name the partition (an RM, a source)
        if self._ident and each is None:
            raise TypeError(f"stage {self.name!r} reads per partition: declare each(task), its partitions")
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def inputs(self) -> tuple[Input, ...] | None:
        return _inputs(self.fn)  # on first use: the stage's module has defined every name its hints use

    def partitions(self, task: TaskConfig) -> list[tuple[Any, ...]]:
        """The partitions (a tuple of the arguments that name one) whose keys differ; ``[()]`` if one key."""
        return [(p,) for p in self.each(task)] if self._ident else [()]

    def reads(self, task: TaskConfig, *ident: Any) -> list[str]:
        """The config paths read (by one partition, or by any when none is named)."""
        if self._ident and not ident:
            return sorted({p for part in self.partitions(task) for p in self.reads(task, *part)})
        return sorted(set(self.reads_fn(task, *ident[: self._ident])) | set(ALWAYS))

    def spreads(self, task: TaskConfig, *args: Any) -> bool:
        """Whether a call with ``args`` trains over the launcher's processes."""
        decl = self.spreads_decl
        return decl(task, *args[: self._ident]) if callable(decl) else decl

    def _declared(self, task: TaskConfig, *ident: Any) -> dict[str, Any]:
        return {p: to_dict(resolve(task, p)) for p in self.reads(task, *ident)}

    def code_version(self, task: TaskConfig, *ident: Any) -> str:
        """The hash of the function's code and of the registry entries this partition uses."""
        uses = self.uses_fn(task, *ident[: self._ident]) if self.uses_fn else ()
        # A set of entries: the order a config lists them in (YAML mappings) is not part of the code.
        return hash_key(code_hash(self.fn), sorted({code_hash(entry) for entry in uses}))

    def version(self, task: TaskConfig, *ident: Any) -> str:
        """The asset's code version, ``config:<hash> code:<hash>``: the declared config values and the
        code this stage runs, apart, so a stale asset can say which of the two changed. A partitioned
        stage's asset has one version over its partitions (Dagster versions an asset, not a partition)."""
        if self._ident and not ident:
            parts = {str(p[0]): p for p in self.partitions(task)}
            config = {name: self._declared(task, *p) for name, p in parts.items()}
            code = hash_key({name: self.code_version(task, *p) for name, p in parts.items()})
        else:
            config, code = self._declared(task, *ident), self.code_version(task, *ident)
        return f"config:{hash_key(self.name, config)} code:{code}"

    def key_version(self, task: TaskConfig, *ident: Any) -> str:
        """The root of the store key of one partition: a hash of its declared values and code."""
        return hash_key(self.name, self._declared(task, *ident), self.code_version(task, *ident))

    def arguments(self, **given: Any) -> tuple[Any, ...]:
        """Keyword inputs (as an asset gets them) in the stage's order; a missing optional one is None."""
        unknown = set(given) - {i.name for i in self.inputs}
        if unknown:
            raise TypeError(f"stage {self.name!r} has no input(s) {sorted(unknown)}")
        return tuple(given[i.name] if i.kind != "optional" else given.get(i.name) for i in self.inputs)

    def __call__(self, task: TaskConfig, store: ArtifactStore, *args: Any, **kwargs: Any) -> Result:
        # Each partition starts from its own fixed generator state, whatever ran before it in the process.
        seed_everything(int(hash_key("rng", self.name, *args[: self._ident]), 16))
        paths = frozenset(self.reads(task, *args))
        ctx = Context(task.task, ConfigView(task, paths, self.name), store, self.key_version(task, *args))
        return self.fn(ctx, *args, **kwargs)


def stage(
    reads: Callable[..., Iterable[str]],
    *,
    each: Callable[[TaskConfig], Iterable[str]] | None = None,
    uses: Callable[..., Iterable[Callable]] | None = None,
    spreads: bool | Callable[..., bool] = False,
) -> Callable[[Callable[..., Result]], Stage]:
    """Declare a stage (see the module docstring): ``reads(task[, partition])`` -> config paths."""
    return lambda fn: Stage(fn, reads, each, uses, spreads)


def done(ref: ArtifactRef) -> Result:
    return ref, {**ref.meta()["metadata"], "artifact": ref.path, "content_hash": ref.content_hash, "cached": ref.cached}


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
