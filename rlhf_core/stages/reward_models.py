"""Reward-model stages: every RM the task declares (one partition per name), trained on the Engine.

    reward_model(task, store, "bt", tok, sft, {"preference_pairs": ref}, world)

Each RM is saved as a Hugging Face model (``save_pretrained``) with its tokenizer and a
``reward_model.json`` that says its kind and settings, so the ``reward_model`` scorer
(``rlhf_core.rewards.trained_rm``) opens any of them by directory. Judging them is
``stages.rm_eval``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rlhf_core.config import ModelSource, RewardModelSpec, TaskConfig
from rlhf_core.stages.base import Context, Result, load_tok, stage, table
from rlhf_core.store import ArtifactRef, write_json_atomic

HEADS = {"fg_token": "token", "pairwise_preference": "causal", "armo": "backbone"}  # else "sequence"


def rm_datasets(spec: RewardModelSpec) -> list[str]:
    """The tables an RM trains on: its data and, for ArmoRM, its preference pairs."""
    return [spec.data, *([spec.pairs] if spec.pairs else [])]


def needs_gold(task: TaskConfig, name: str) -> bool:
    """An ArmoRM whose objectives are not columns of its data takes them from the gold judge (the demo)."""
    return task.reward_models[name].kind == "armo" and task.gold is not None


def _reads(task: TaskConfig, name: str) -> list[str]:
    spec = task.reward_models[name]
    return [
        f"reward_models.{name}",
        "seed",
        "compute",
        *(["sft.model.init"] if spec.init == "scratch" else []),
        *(["gold", "world"] if needs_gold(task, name) else []),
        *([f"datasets.{spec.data}", f"datasets.{spec.pairs}"] if spec.precomputed_embeddings else []),
    ]


def base_model(spec: RewardModelSpec, cfg: Any, sft_ref: ArtifactRef | None, tok, head: str):
    """The network an RM starts from, with the head its kind needs (``HEADS``)."""
    from transformers import (
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    from rlhf_core.models.load import build_causal_lm, from_pretrained_model, quantized_load

    cls = {
        "sequence": AutoModelForSequenceClassification,
        "token": AutoModelForTokenClassification,
        "causal": AutoModelForCausalLM,
        "backbone": AutoModel,
    }[head]
    extra = {"num_labels": 3 if head == "token" else 1} if head in ("sequence", "token") else {}
    init = cfg.sft.model.init if spec.init == "scratch" else (spec.model.init if spec.model else None)
    if init is not None:  # a random network of the configured sizes
        return cls.from_config(build_causal_lm(init, tok, cfg.seed).config, **extra)
    return from_pretrained_model(
        cls, base_source(spec, sft_ref), use_safetensors=True, **extra, **quantized_load(spec.quantization)
    )


def base_source(spec: RewardModelSpec, sft_ref: ArtifactRef | None) -> ModelSource | None:
    """Where a pretrained base loads from (what an adapter-only RM artifact names); None when built in code."""
    if spec.init == "sft":
        return ModelSource(path=sft_ref.path)
    return spec.model if spec.model is not None and spec.model.init is None else None


def rm_tokenizer(spec: RewardModelSpec, tok_ref: ArtifactRef | None):
    """The task's tokenizer for its own networks, else the pretrained model's."""
    from rlhf_core.models.load import load_tokenizer

    if spec.model is not None and spec.model.init is None:
        return load_tokenizer(spec.model)
    return load_tok(tok_ref)


def add_pad_token(model, tok, pad_token: str) -> None:
    """[RF]'s new pad token (docs/sources.md §5.5): with EOS as the pad, a conversation ending in
    EOS (llama3-Instruct's ``<|eot_id|>``) would be read one token early, as if that were padding."""
    tok.add_special_tokens({"pad_token": pad_token})
    model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id


def _compute(cfg: Any, spec: RewardModelSpec):
    return cfg.compute if spec.lora is None else dataclasses.replace(cfg.compute, lora=spec.lora)


def split_rows(ref: ArtifactRef, split: str):
    """The rows of one split (every row of a table without a ``split`` column)."""
    rows = table(ref)
    return rows[rows["split"] == split].reset_index(drop=True) if "split" in rows else rows


def rm_names(task: TaskConfig) -> list[str]:
    return list(task.reward_models)


# ArmoRM fits ridge probes and a gating net on frozen embeddings in one process; every other kind
# trains on the engine's prepared model, which spreads over the launcher's processes.
@stage(_reads, each=rm_names, spreads=lambda task, name: task.reward_models[name].kind != "armo")
def reward_model(
    ctx: Context,
    name: str,
    tok: ArtifactRef | None,
    sft: ArtifactRef | None,
    data: dict[str, ArtifactRef],
    world: ArtifactRef | None,
) -> Result:
    """Train reward model ``name`` of the task: its kind's loss on its data's ``train_split`` rows,
    from its base network (docs/sources.md §5)."""
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import save_model

    spec = ctx.cfg.reward_models[name]
    kind = spec.kind

    def build(out: Path, work: Path) -> dict[str, Any]:
        info: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "max_length": spec.train.max_length,
            "truncation_side": spec.truncation_side,
            "response_template": spec.response_template,
            "chat_template": spec.chat_template,
        }
        train_rows = split_rows(data[spec.data], spec.train_split)
        if spec.precomputed_embeddings:
            return _build_armo_tables(train_rows, data, spec, info, ctx.cfg, out)
        tokenizer = rm_tokenizer(spec, tok)
        model = base_model(spec, ctx.cfg, sft, tokenizer, HEADS.get(kind, "sequence"))
        if spec.pad_token:
            add_pad_token(model, tokenizer, spec.pad_token)
            info["pad_token"] = spec.pad_token
        if kind == "armo":
            return _build_armo(model, tokenizer, train_rows, data, world, spec, info, ctx.cfg, out)
        if kind == "fg_token":
            result, extra = _train_token(model, tokenizer, train_rows, spec, work, _compute(ctx.cfg, spec))
            info.update(extra)
        elif kind == "pairwise_preference":
            from rlhf_core.train.pair_pm import train_pair_pm

            result = train_pair_pm(model, tokenizer, train_rows, spec.train, work, _compute(ctx.cfg, spec))
        else:
            from rlhf_core.train.reward_model import train_sequence_rm

            result = train_sequence_rm(
                kind,
                model,
                tokenizer,
                train_rows,
                spec.train,
                work,
                _compute(ctx.cfg, spec),
                spec.truncation_side,
                spec.response_template,
                spec.chat_template,
            )
        saved = save_model(result.model, tokenizer, out, base_source(spec, sft))
        write_json_atomic(out / "reward_model.json", info)
        loss_curve(result.history, out / "loss_curve.png", f"{name} ({kind}) loss")
        return {
            **saved,
            "reward_model": info,
            "train_rows": len(train_rows),
            "steps": result.steps,
            "final_loss": result.history[-1]["loss"],
            "loss_curve": "loss_curve.png",
            **{
                f"final_train_{k}": v
                for k, v in result.history[-1].items()
                if k not in ("step", "loss", "grad_norm", "lr")
            },
        }

    parents = {"tokenizer": tok, "sft": sft, "world": world, **{f"data/{d}": data[d] for d in rm_datasets(spec)}}
    return ctx.build("reward_model", name, parents, build)


def _train_token(model, tok, rows, spec: RewardModelSpec, work: Path, compute) -> tuple[Any, dict[str, Any]]:
    from rlhf_core.train.rm_token import NO_ERROR, TokenLabels, marker_id, train_token_rm

    labels = TokenLabels.of(spec.label_type)
    model.config.id2label = dict(enumerate(labels.names))
    model.config.label2id = {n: i for i, n in enumerate(labels.names)}
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    result = train_token_rm(model, tok, rows, labels, spec.unit, spec.marker, spec.train, work, compute)
    return result, {
        "label_type": spec.label_type,
        "segmentation": spec.unit,
        "marker": spec.marker,
        "marker_token_id": marker_id(tok),
        "id2label": list(labels.names),
        "error_label_id": labels.names.index(labels.error),
        "no_error_label_id": labels.names.index(NO_ERROR),
    }


def objective_labels(rows, objectives: list[str], world_ref: ArtifactRef | None, cfg: Any):
    """ArmoRM's stage-1 targets (N, K): the objective columns of the table, else the gold judge's
    components of each (prompt, completion) (the demo)."""
    if all(o in rows for o in objectives):
        return rows[objectives].to_numpy(dtype=float)
    if world_ref is None:
        raise ValueError(
            f"armo: the table lacks objective column(s) {[o for o in objectives if o not in rows]} "
            "and the task has no gold judge to grade them"
        )
    from rlhf_core.demo.gold import judge

    gold = judge(table(world_ref), cfg.world, cfg.gold)
    return gold.components(rows["prompt"].tolist(), rows["completion"].tolist())[objectives].to_numpy(dtype=float)


def _verbosity_dim(spec: RewardModelSpec) -> int | None:
    return spec.objectives.index(spec.verbosity_objective) if spec.verbosity_objective else None


def _build_armo(
    backbone, tok, rows, data_refs, world_ref, spec: RewardModelSpec, info: dict, cfg: Any, out: Path
) -> dict[str, Any]:
    from rlhf_core.models.load import save_model
    from rlhf_core.train.armo_rm import fit_armo

    backbone.eval()
    pairs = split_rows(data_refs[spec.pairs], spec.train_split)
    labels = objective_labels(rows, list(spec.objectives), world_ref, cfg)
    armo, report = fit_armo(backbone, tok, rows, labels, pairs, spec.train, _verbosity_dim(spec), spec.gating_steps)
    save_model(backbone, tok, out)
    return _save_armo(armo, report, spec, info, out, len(rows), len(pairs))


def check_same_backbone(datasets: Any, names: list[str], keys: tuple[str, ...], where: str) -> None:
    """Embedding tables read together must come from one backbone read one way (their ``keys``
    options: ``model``, ``strip_bos_text``, and for stage-2 tables ``token_pattern``)."""
    seen = {tuple(repr(datasets[n].options.get(k)) for k in keys) for n in names}
    if len(seen) > 1:
        raise ValueError(
            f"{where}: datasets {sorted(set(names))} embed with different {' / '.join(keys)}; give them the same"
        )


def _build_armo_tables(rows, data_refs, spec: RewardModelSpec, info: dict, cfg: Any, out: Path) -> dict[str, Any]:
    """ArmoRM on the data layer's embedding tables. The artifact names their backbone and how
    they were read from it, so the scorer embeds new text the way the tables were made."""
    from rlhf_core.config_parse import to_dict
    from rlhf_core.data.armo_embeddings import token_pattern
    from rlhf_core.data.tokenizer import source_option
    from rlhf_core.train.armo_rm import fit_armo_tables

    check_same_backbone(cfg.datasets, [spec.data, spec.pairs], ("model", "strip_bos_text"), f"armo {info['name']!r}")
    pairs = split_rows(data_refs[spec.pairs], spec.train_split)
    armo, report = fit_armo_tables(
        rows, list(spec.objectives), pairs, spec.train, _verbosity_dim(spec), spec.gating_steps
    )
    made = cfg.datasets[spec.pairs]
    info.update(
        backbone=to_dict(source_option(made.options.get("model"), name="model", builder=made.builder)),
        token_pattern=list(token_pattern(made.options.get("token_pattern", "llama3"), builder=made.builder)),
        strip_bos_text=made.options.get("strip_bos_text", True),
    )
    return _save_armo(armo, report, spec, info, out, len(rows), len(pairs))


def _save_armo(
    armo, report: dict, spec: RewardModelSpec, info: dict, out: Path, n_rows: int, n_pairs: int
) -> dict[str, Any]:
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.train.armo_rm import save_armo

    losses = report.pop("losses")
    save_armo(armo, out)
    info.update(objectives=list(spec.objectives), gating=report["gating"])
    write_json_atomic(out / "reward_model.json", info)
    loss_curve(
        [{"step": i + 1, "loss": v} for i, v in enumerate(losses)],
        out / "loss_curve.png",
        f"{info['name']} (armo) gating loss",
    )
    return {
        "reward_model": info,
        "train_rows": n_rows,
        "train_pairs": n_pairs,
        "steps": len(losses),
        "final_loss": losses[-1],
        "loss_curve": "loss_curve.png",
        **report,
    }


def read_spec(ref: ArtifactRef) -> dict[str, Any]:
    return json.loads(ref.file("reward_model.json").read_text())
