"""Reward-model kinds by name: how each trains (its loss, rows and head) and whether it spreads.

    RM_KINDS.get("crs_ranking")   # RMKind("crs_ranking", train=crs_ranking, spreads=True)

One entry per ``kind`` a ``reward_models`` entry may name. The ``reward_model`` stage
(``stages.reward_models``) keys each partition on its own kind's trainer code alone
(``Stage(uses=...)``), so an edit to one kind's trainer re-trains only the RMs of that kind. A
trainer gets the run (``RMRun``: the config view, its spec, its parents, its training rows) and
returns the artifact's metadata after writing it into ``run.out``. An asset's trail to its loss is
``assets`` -> ``stages.reward_models.reward_model`` -> ``RM_KINDS`` -> a trainer here ->
``rlhf_core.train``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.config import ModelSource, RewardModelSpec
from rlhf_core.registry import Registry
from rlhf_core.stages.base import load_tok, table
from rlhf_core.store import ArtifactRef, write_json_atomic


@dataclass(frozen=True)
class RMRun:
    """What a kind's trainer gets: the config view, the RM's spec, its parents, where to write."""

    cfg: Any  # ConfigView over the TaskConfig
    spec: RewardModelSpec
    tok: ArtifactRef | None
    sft: ArtifactRef | None
    data: dict[str, ArtifactRef]
    world: ArtifactRef | None
    rows: pd.DataFrame  # the training rows: its data's ``train_split``
    info: dict[str, Any]  # what reward_model.json says (kind, name, text settings); trainers add theirs
    out: Path
    work: Path

    def network(self, head: str):
        """The base network with ``head`` and its tokenizer ([RF]'s pad token added where set)."""
        tokenizer = rm_tokenizer(self.spec, self.tok)
        model = base_model(self.spec, self.cfg, self.sft, tokenizer, head)
        if self.spec.pad_token:
            add_pad_token(model, tokenizer, self.spec.pad_token)
            self.info["pad_token"] = self.spec.pad_token
        return model, tokenizer

    @property
    def compute(self):
        """The task's compute settings, with the RM's own LoRA where it sets one."""
        compute = self.cfg.compute
        return compute if self.spec.lora is None else dataclasses.replace(compute, lora=self.spec.lora)

    def saved(self, result, tokenizer) -> dict[str, Any]:
        """Save the trained network, reward_model.json and the loss curve; the artifact's metadata."""
        from rlhf_core.eval.plots import loss_curve
        from rlhf_core.models.load import save_model

        saved = save_model(result.model, tokenizer, self.out, base_source(self.spec, self.sft))
        write_json_atomic(self.out / "reward_model.json", self.info)
        loss_curve(result.history, self.out / "loss_curve.png", f"{self.info['name']} ({self.info['kind']}) loss")
        return {
            **saved,
            "reward_model": self.info,
            "train_rows": len(self.rows),
            "steps": result.steps,
            "final_loss": result.history[-1]["loss"],
            "loss_curve": "loss_curve.png",
            **{
                f"final_train_{k}": v
                for k, v in result.history[-1].items()
                if k not in ("step", "loss", "grad_norm", "lr")
            },
        }


@dataclass(frozen=True)
class RMKind:
    name: str
    train: Callable[[RMRun], dict[str, Any]]  # trains, writes the RM into run.out; returns its metadata
    spreads: bool  # trains on the engine's prepared model, which spreads over the launcher's processes


RM_KINDS: Registry[RMKind] = Registry("reward model kind")


def rm_kind(name: str, spreads: bool = True) -> Callable[[Callable], Callable]:
    """Register a trainer as reward-model kind ``name``."""

    def deco(train: Callable) -> Callable:
        RM_KINDS.add(name, RMKind(name, train, spreads))
        return train

    return deco


def _sequence(run: RMRun, step_of) -> dict[str, Any]:
    """A one-logit RM trained with its kind's step (``train.reward_model``)."""
    from rlhf_core.train.reward_model import train_sequence_rm

    model, tokenizer = run.network("sequence")
    spec = run.spec
    result = train_sequence_rm(
        step_of,
        model,
        tokenizer,
        run.rows,
        spec.train,
        run.work,
        run.compute,
        spec.truncation_side,
        spec.response_template,
        spec.chat_template,
        desc=spec.kind,
    )
    return run.saved(result, tokenizer)


@rm_kind("bradley_terry")
def bradley_terry(run: RMRun) -> dict[str, Any]:
    """-log sigmoid(r_chosen - r_rejected) on ``prompt, chosen, rejected`` rows (docs/sources.md §5.2)."""
    from rlhf_core.train import rm_losses
    from rlhf_core.train.reward_model import pair_step

    return _sequence(run, pair_step(rm_losses.bradley_terry))


@rm_kind("fg_sequence_preference")
def fg_sequence_preference(run: RMRun) -> dict[str, Any]:
    """[FG]'s sequence-level preference RM on ``prompt, chosen, rejected`` rows."""
    from rlhf_core.train import rm_losses
    from rlhf_core.train.reward_model import pair_step

    return _sequence(run, pair_step(rm_losses.fg_sequence_preference))


@rm_kind("crs_ranking")
def crs_ranking(run: RMRun) -> dict[str, Any]:
    """[CRS]'s ranking loss on ``prompt, completions`` rows (best first)."""
    from rlhf_core.train.reward_model import ranking_step

    return _sequence(run, ranking_step)


@rm_kind("crs_absolute")
def crs_absolute(run: RMRun) -> dict[str, Any]:
    """[CRS]'s absolute loss on ``prompt, completion, score`` rows."""
    from rlhf_core.train.reward_model import absolute_step

    return _sequence(run, absolute_step)


@rm_kind("fg_token")
def fg_token(run: RMRun) -> dict[str, Any]:
    """[FG]'s token classifier: cross-entropy at the segment markers (docs/sources.md §5.1)."""
    from rlhf_core.train.rm_token import NO_ERROR, TokenLabels, marker_id, train_token_rm

    model, tok = run.network("token")
    spec = run.spec
    labels = TokenLabels.of(spec.label_type)
    model.config.id2label = dict(enumerate(labels.names))
    model.config.label2id = {n: i for i, n in enumerate(labels.names)}
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    result = train_token_rm(model, tok, run.rows, labels, spec.unit, spec.marker, spec.train, run.work, run.compute)
    run.info.update(
        label_type=spec.label_type,
        segmentation=spec.unit,
        marker=spec.marker,
        marker_token_id=marker_id(tok),
        id2label=list(labels.names),
        error_label_id=labels.names.index(labels.error),
        no_error_label_id=labels.names.index(NO_ERROR),
    )
    return run.saved(result, tok)


@rm_kind("pairwise_preference")
def pairwise_preference(run: RMRun) -> dict[str, Any]:
    """[RF]'s pairwise preference model: a causal LM that answers A or B (docs/sources.md §5.6)."""
    from rlhf_core.train.pair_pm import train_pair_pm

    model, tok = run.network("causal")
    return run.saved(train_pair_pm(model, tok, run.rows, run.spec.train, run.work, run.compute), tok)


# ArmoRM fits ridge probes and a gating net on frozen embeddings in one process.
@rm_kind("armo", spreads=False)
def armo(run: RMRun) -> dict[str, Any]:
    """[RF]'s ArmoRM on a frozen backbone (docs/sources.md §5.7), or on the data layer's embedding tables."""
    from rlhf_core.models.load import save_model
    from rlhf_core.train.armo_rm import fit_armo

    spec = run.spec
    if spec.precomputed_embeddings:
        return _build_armo_tables(run.rows, run.data, spec, run.info, run.cfg, run.out)
    backbone, tok = run.network("backbone")
    backbone.eval()
    pairs = split_rows(run.data[spec.pairs], spec.train_split)
    labels = objective_labels(run.rows, list(spec.objectives), run.world, run.cfg)
    model, report = fit_armo(
        backbone, tok, run.rows, labels, pairs, spec.train, _verbosity_dim(spec), spec.gating_steps
    )
    save_model(backbone, tok, run.out)
    return _save_armo(model, report, spec, run.info, run.out, len(run.rows), len(pairs))


def base_model(spec: RewardModelSpec, cfg: Any, sft_ref: ArtifactRef | None, tok, head: str):
    """The network an RM starts from, with the head its kind needs (``head``: sequence, token, causal, backbone)."""
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


def split_rows(ref: ArtifactRef, split: str):
    """The rows of one split (every row of a table without a ``split`` column)."""
    rows = table(ref)
    return rows[rows["split"] == split].reset_index(drop=True) if "split" in rows else rows


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
    from rlhf_core.config.parse import to_dict
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
