"""Annotation stages: each reward component resolved into a scorer, scored shards and incoming days, R.

The task's reward function is ``annotation.scorers``; this module names no scorer. What a scorer
needs beyond its parameters (fitted state, a pipeline table, config) it declares in the registry
(``rlhf_core.rewards.base``), and its artifact holds all of it, so any stage can open it alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.config import TaskConfig, project_root
from rlhf_core.data.quarantine import QUARANTINE_COLUMNS, CleanResult, Ledger
from rlhf_core.stages.base import QUARANTINE, TABLE, Context, Result, stage, table
from rlhf_core.store import ArtifactRef, hash_dir, write_json_atomic, write_table

SCORER_SPEC = "scorer.json"
IDENTITY = ("scorer", "params", "model_asset", "partition")  # what makes a component's scores; not its weight
TERM = ("weight", "transform")  # how its scores enter R


def scorer_tables(task: TaskConfig) -> dict[str, str]:
    """Pipeline tables the task's scorers need, by the name they ask for -> the dataset or source."""
    from rlhf_core.rewards.base import scorer_needs

    cfg = task.annotation
    wanted = {t for spec in cfg.scorers.values() for t in scorer_needs(spec.scorer).tables}
    tables = {"data": cfg.data, "world": task.gold.source if task.gold else None}
    for name in wanted:
        if tables.get(name) is None:
            raise ValueError(f"annotation: a scorer needs the {name!r} table, which this task does not have")
    return {name: tables[name] for name in sorted(wanted)}


def _scorer_reads(task: TaskConfig, component: str) -> list[str]:
    from rlhf_core.rewards.base import scorer_needs

    spec = task.annotation.scorers[component]
    return [*(f"annotation.scorers.{component}.{f}" for f in IDENTITY), *scorer_needs(spec.scorer).config]


def _scorer_code(task: TaskConfig, component: str) -> list:
    from rlhf_core.rewards.base import scorer_code

    spec = task.annotation.scorers[component]
    return scorer_code(spec.scorer, spec.params)


def reward_terms(task: TaskConfig) -> list[str]:
    """The config paths of R itself: every component's weight and transform."""
    return [f"annotation.scorers.{c}.{f}" for c in task.annotation.scorers for f in TERM]


@stage(_scorer_reads, each=lambda task: list(task.annotation.scorers), uses=_scorer_code)
def reward_scorer(
    ctx: Context,
    component: str,
    tables: dict[str, ArtifactRef],
    model_refs: dict[str, ArtifactRef | dict[str, ArtifactRef]],
) -> Result:
    """Resolve one reward component into a scorer that loads from its artifact alone.

    The artifact's content is the scorer's identity (code version, parameters, fitted state, a
    hash of its weights); its annotations are reused while it is unchanged.
    """
    from rlhf_core.rewards.base import prepare_scorer, scorer_needs

    spec = ctx.cfg.annotation.scorers[component]
    model_ref = model_refs.get(spec.model_asset) if spec.model_asset else None
    if isinstance(model_ref, dict):  # the reward_model asset: one trained RM per partition
        model_ref = model_ref[spec.partition]
    needs = scorer_needs(spec.scorer)

    def build(out: Path, _: Path) -> dict[str, Any]:
        params = {**spec.params, **({"model": model_ref.path} if model_ref else {})}
        config = {p: _value(ctx.cfg, p) for p in needs.config}
        try:
            prepare_scorer(spec.scorer, params, out, config, {t: table(tables[t]) for t in needs.tables})
        except Exception as err:
            raise _load_error(component, spec.scorer, err) from err
        scorer = _open(component, spec.scorer, params, out)
        model_dir = Path(str(params.get("model", "")))
        weights = hash_dir(model_dir) if params.get("model") and model_dir.is_dir() else None
        write_json_atomic(
            out / SCORER_SPEC,
            {
                "component": component,
                "scorer": spec.scorer,
                "params": params,
                "version": scorer.version,
                "weights": weights,
            },
        )
        return {
            "scorer": spec.scorer,
            "scorer_code_version": scorer.version,
            "weights_hash": str(weights),
            "params": {k: str(v) for k, v in params.items()},
        }

    parents = {**{t: tables[t] for t in needs.tables}, "model": model_ref}
    return ctx.build("reward_scorers", component, parents, build)


def _value(view: Any, path: str) -> Any:
    for part in path.split("."):
        view = None if view is None else getattr(view, part)
    return view


def _load_error(component: str, name: str, err: Exception) -> Exception:
    from rlhf_core.rewards.base import ScorerLoadError

    return ScorerLoadError(
        f"reward component {component!r}: scorer {name!r} failed to load ({type(err).__name__}: {err})"
    )


def _open(component: str, name: str, params: dict[str, Any], state_dir: Path):
    from rlhf_core.rewards.base import open_scorer

    try:
        return open_scorer(name, params, state_dir)
    except Exception as err:
        raise _load_error(component, name, err) from err


def open_component(ref: ArtifactRef):
    """The scorer of a ``reward_scorers`` artifact and its spec (component, scorer, params)."""
    spec = json.loads(ref.file(SCORER_SPEC).read_text())
    return spec, _open(spec["component"], spec["scorer"], spec["params"], ref.checked_dir())


def reward_function(cfg: Any, scorer_refs: dict[str, ArtifactRef]):
    """The task's R over the scorers of its ``reward_scorers`` artifacts (``cfg``: a view declaring
    ``reward_terms``)."""
    from rlhf_core.rewards.combine import RewardFunction, terms

    return RewardFunction({c: open_component(r)[1] for c, r in scorer_refs.items()}, terms(cfg.annotation.scorers))


@stage(lambda task: ["annotation.shards"])
def annotate_shard(ctx: Context, component: str, shard: int, data: ArtifactRef, scorer: ArtifactRef) -> Result:
    """Score one shard of the task's dataset with one component's scorer, reusing earlier scores."""
    from rlhf_core.rewards.annotate import shard_of

    rows = annotation_rows(data)
    in_shard = [shard_of(p, c, ctx.cfg.annotation.shards) == shard for p, c in zip(rows["prompt"], rows["completion"])]
    rows = rows.loc[in_shard, ["row_id", "prompt", "completion"]].reset_index(drop=True)
    return _annotate(
        ctx,
        "annotated_responses",
        f"{component}/shard-{shard}",
        rows,
        None,
        scorer,
        {"data": data},
        component=component,
        shard=shard,
    )


@stage(lambda task: ["annotation.incoming.folder"])
def annotate_incoming(ctx: Context, component: str, date: str, scorer: ArtifactRef) -> Result:
    """Score the responses dropped into the incoming folder on ``date`` (an empty day scores nothing)."""
    from rlhf_core.rewards.incoming import content_fingerprint

    day = _folder(ctx.cfg.annotation.incoming.folder) / date
    result = _read_incoming(day)
    ref, meta = _annotate(
        ctx,
        "annotated_incoming",
        f"{component}/{date}",
        result.kept,
        result.quarantined,
        scorer,
        {},
        component=component,
        date=date,
        files=content_fingerprint(day) if day.is_dir() else None,
    )
    return ref, {**meta, "incoming_folder": str(day)}


def _folder(folder: str) -> Path:
    return project_root() / folder  # an absolute folder stays as it is


def incoming_folder(task: TaskConfig) -> Path:
    """Where new responses are dropped (relative paths are under the project root)."""
    return _folder(task.annotation.incoming.folder)


def _read_incoming(day: Path) -> CleanResult:
    from rlhf_core.rewards.incoming import INCOMING_COLUMNS, read_day

    if day.is_dir():
        return read_day(day)
    return CleanResult(pd.DataFrame(columns=INCOMING_COLUMNS), pd.DataFrame(columns=QUARANTINE_COLUMNS), {}, 0)


def _annotate(
    ctx: Context,
    asset: str,
    partition: str,
    rows: pd.DataFrame,
    input_quarantine: pd.DataFrame | None,
    scorer_ref: ArtifactRef,
    parents: dict[str, ArtifactRef],
    **extra: Any,
) -> Result:
    from rlhf_core.eval.plots import histogram
    from rlhf_core.rewards.annotate import annotate

    version = scorer_ref.content_hash  # covers the code version, the parameters and the weights

    def build(out: Path, _: Path) -> dict[str, Any]:
        spec, scorer = open_component(scorer_ref)
        previous = next(
            (
                table(r)
                for r in ctx.store.previous(ctx.task, asset, partition)
                if r.meta()["metadata"].get("scorer_version") == version
            ),
            None,
        )
        result = annotate(rows, scorer, previous, version=version)
        quarantined = pd.concat(
            [q for q in (input_quarantine, result.quarantined) if q is not None and len(q)] or [result.quarantined],
            ignore_index=True,
        )
        write_table(result.scored, out / TABLE)
        write_table(quarantined, out / QUARANTINE)
        scores = result.scored["score"]
        meta = {
            **result.stats,
            "input_quarantined": 0 if input_quarantine is None else len(input_quarantine),
            "scorer": spec["scorer"],
            "scorer_version": version,
            "quarantine_reasons": quarantined["reason"].value_counts().to_dict(),
        }
        if len(scores):
            histogram(
                {spec["component"]: scores.to_numpy()},
                out / "histogram.png",
                f"{spec['component']} ({spec['scorer']}) over {len(scores)} rows",
            )
            meta.update(mean=float(scores.mean()), std=float(scores.std(ddof=0)), histogram="histogram.png")
        return meta

    ref, meta = ctx.build(asset, partition, {**parents, "scorer": scorer_ref}, build, **extra)
    # A cached artifact means this run scored nothing: every row's score was already there.
    if ref.cached:
        return ref, {**meta, "scored_this_run": 0, "reused_this_run": meta["scored"] + meta["reused"]}
    return ref, {**meta, "scored_this_run": meta["scored"], "reused_this_run": meta["reused"]}


@stage(reward_terms)
def combine_rewards(
    ctx: Context, asset: str, partition: str | None, annotations: dict[str, list[ArtifactRef]], rows: pd.DataFrame
) -> Result:
    """R per row: ``sum_k w_k * T_k(score_k)`` over the task's components (docs/sources.md §3.2, §3.3).

    Args:
        annotations: Component name -> its annotation artifacts (one per shard or day).
        rows: ``row_id``, ``prompt``, ``completion`` (and ``split``) of every annotated row.

    A row that lacks a weighted component's score (that scorer quarantined it) is quarantined
    here too, with the reason; components of weight 0 are reported as columns only.
    """
    from rlhf_core.eval.plots import histogram
    from rlhf_core.rewards.combine import reward_from_scores, terms, weighted

    terms_ = terms(ctx.cfg.annotation.scorers)
    parents = {f"{name}/{i}": ref for name, refs in annotations.items() for i, ref in enumerate(refs)}

    def build(out: Path, _: Path) -> dict[str, Any]:
        frame = rows.copy()
        for name, refs in sorted(annotations.items()):
            scores = pd.concat([table(r) for r in refs], ignore_index=True)
            frame[name] = frame["row_id"].map(dict(zip(scores["row_id"], scores["score"])))
        needed = weighted(terms_)
        missing = frame[needed].isna()
        ledger = Ledger(source=asset, n_input=len(frame))
        for i in np.flatnonzero(missing.any(axis=1).to_numpy()):
            lacking = [k for k in needed if missing.iloc[i][k]]
            ledger.quarantine_row(
                frame.iloc[i]["row_id"],
                lacking[0],
                f"no {', '.join(lacking)} score (quarantined by that scorer)",
                frame.iloc[i][["prompt", "completion"]].to_dict(),
            )
        kept = frame[~missing.any(axis=1)].copy()
        kept["reward"] = reward_from_scores(kept, terms_)
        result = ledger.result(kept)
        write_table(result.kept, out / TABLE)
        write_table(result.quarantined, out / QUARANTINE)
        names = list(terms_)
        meta = {
            **result.counts(),
            "weights": {k: t.weight for k, t in terms_.items()},
            "transforms": {k: t.transform for k, t in terms_.items()},
            "component_means": kept[names].mean().round(4).to_dict(),
            # How the components agree (e.g. a trained RM against the gold judge): Pearson r.
            "correlations": kept[names].corr().round(3).reset_index(names="component"),
        }
        if len(kept):
            histogram({"reward": kept["reward"].to_numpy()}, out / "histogram.png", f"reward over {len(kept)} rows")
            meta.update(
                reward_mean=float(kept["reward"].mean()),
                histogram="histogram.png",
                preview=kept.drop(columns=["prompt"]).head(5),
            )
        return meta

    return ctx.build(asset, partition, parents, build, rows=rows_fingerprint(rows))


def rows_fingerprint(rows: pd.DataFrame) -> int:
    """A content hash of a table whose cells may be lists or arrays (e.g. [CRS]'s ``prefix``
    turns), which pandas' own row hashing refuses: such a cell is hashed as its JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (np.ndarray, list, tuple)):
            return [plain(v) for v in value]
        return {k: plain(v) for k, v in value.items()} if isinstance(value, dict) else value

    cells = rows.apply(
        lambda col: (
            col.map(
                lambda v: json.dumps(plain(v), default=str) if isinstance(v, (np.ndarray, list, tuple, dict)) else v
            )
            if col.dtype == object
            else col
        )
    )
    return pd.util.hash_pandas_object(cells).sum().item()


def annotation_rows(data_ref: ArtifactRef) -> pd.DataFrame:
    return table(data_ref).rename(columns={"id": "row_id"})


def incoming_rows(task: TaskConfig, date: str) -> pd.DataFrame:
    return _read_incoming(incoming_folder(task) / date).kept
