"""Human feedback stages: the items a collection shows people, the table their labels become, and the
scores of an exported human ranking study (docs/sources.md §7.4, §8).

Talking to the annotation tool is the shell's part (``resources/annotation_tool.py``): these stages only
read and write the store and the batch folder, so they run and test without the tool.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlhf_core.config import TaskConfig
from rlhf_core.paths import project_root
from rlhf_core.stages.base import Context, Result, stage, table, write_clean
from rlhf_core.store import ArtifactRef, hash_key, write_table
from rlhf_core.store_verify import sha256_file


def batch_folder(task, collection: str) -> Path:
    """``<feedback.folder>/<task>/<collection>``; a relative folder is under the project root."""
    return project_root() / task.feedback.folder / task.task / collection


def _collections(task: TaskConfig) -> list[str]:
    return list(task.feedback.collections) if task.feedback else []


@stage(lambda task, collection: [f"feedback.collections.{collection}", "seed"], each=_collections)
def annotation_items(ctx: Context, collection: str, generations: dict[str, ArtifactRef]) -> Result:
    """The items of one collection: every prompt its policies answered (or a seeded sample), with a stable id."""
    from rlhf_core.feedback.interfaces import build_items

    spec = ctx.cfg.feedback.collections[collection]
    missing = sorted(set(spec.policies) - set(generations))
    if missing:
        raise ValueError(f"feedback.collections.{collection}: no generations of {missing}; have {sorted(generations)}")

    def build(out: Path, _: Path) -> dict[str, Any]:
        answers = {
            p: {str(r["id"]): (r["prompt"], r["completion"]) for r in table(generations[p]).to_dict("records")}
            for p in spec.policies
        }
        items = build_items(
            collection,
            spec.interface,
            answers,
            spec.policies,
            spec.sample,
            ctx.cfg.seed,
        )
        (out / "items.json").write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
        return {
            "items": len(items),
            "interface": spec.interface,
            "policies": list(spec.policies),
        }

    return ctx.build(f"{collection}_items", None, {p: generations[p] for p in spec.policies}, build)


def read_items(ref: ArtifactRef) -> list[dict[str, Any]]:
    return json.loads(ref.file("items.json").read_text(encoding="utf-8"))


@stage(
    lambda task, collection: [
        f"feedback.collections.{collection}.interface",
        "feedback.folder",
    ],
    each=_collections,
)
def feedback_table(ctx: Context, collection: str) -> Result:
    """Every batch of one collection as the table its consumers read (``batches.collection_table``). Like a
    raw source it has no parent asset: the batches' content is in its key, so a new batch is a new table and
    an unchanged folder finds the old one."""
    from rlhf_core.feedback.batches import collection_table, fingerprint

    folder = batch_folder(ctx.cfg, collection)
    kind = ctx.cfg.feedback.collections[collection].interface

    def build(out: Path, _: Path) -> dict[str, Any]:
        result, used = collection_table(folder, kind, ctx.cfg)
        meta = write_clean(result, out)
        (out / "lineage.json").write_text(json.dumps(used, indent=1), encoding="utf-8")
        preview = result.kept.drop(columns=["passages", "predictions"], errors="ignore").head(8)
        return {
            **meta,
            "batches": used["batches"],
            "annotations_used": len(used["annotations_used"]),
            "batch_folder": str(folder),
            "preview": preview,
        }

    return ctx.build(collection, None, {}, build, batches=fingerprint(folder))


@stage(lambda task: ["human_rankings"])
def human_rankings(ctx: Context) -> Result:
    """An exported ranking study: each prompt's ballots merged by ranked pairs, Borda points per model and
    group, their mean and population std over groups (docs/sources.md §7.4)."""
    from rlhf_core.feedback.human_study import Ballots, read_argilla, read_jsonl, score

    cfg = ctx.cfg.human_rankings
    root = project_root() / cfg.path
    files = (
        [root / g["file"] for g in cfg.groups.values()] + [root / cfg.keys_file]
        if cfg.format == "argilla"
        else [root / f for f in cfg.files]
    )
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"human_rankings: no file {path}")

    def build(out: Path, _: Path) -> dict[str, Any]:
        ballots = Ballots()
        if cfg.format == "argilla":
            keys = json.loads((root / cfg.keys_file).read_text(encoding="utf-8"))
            for group, spec in cfg.groups.items():
                read_argilla(root / spec["file"], keys[spec["keys"]], group, ballots)
        else:
            for path in files:
                read_jsonl(path, ballots)
        result, board = score(ballots)
        meta = write_clean(result, out)
        write_table(board, out / "board.parquet")
        return {**meta, "board": board, "models": len(board)}

    return ctx.build(
        "human_rankings",
        None,
        {},
        build,
        files=hash_key([sha256_file(p) for p in files]),
    )
