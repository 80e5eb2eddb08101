"""Model stages: the tokenizer, the SFT reference and the Bradley-Terry reward model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.config import ModelSource
from rlhf_core.stages.base import Context, Result, load_tok, stage, table
from rlhf_core.store import ArtifactRef

CORPUS_COLUMNS = ("prompt", "completion", "chosen", "rejected")


@stage(lambda task: ["tokenizer"])
def tokenizer(ctx: Context, corpora: dict[str, ArtifactRef]) -> Result:
    """A byte-level BPE trained on the task's corpora, or the configured hub/local tokenizer."""
    from rlhf_core.models.load import load_tokenizer, train_tokenizer

    cfg = ctx.cfg.tokenizer

    def build(out: Path, _: Path) -> dict[str, Any]:
        if cfg.source is not None:
            tok = load_tokenizer(cfg.source)
        else:
            texts = [t for ref in corpora.values() for df in [table(ref)] for col in CORPUS_COLUMNS if col in df
                     for t in df[col].tolist()]
            tok = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
        tok.save_pretrained(out)
        return {"vocab_size": len(tok)}

    return ctx.build("tokenizer", None, corpora, build)


@stage(lambda task: ["sft", "seed", "compute"])
def sft_model(ctx: Context, tok_ref: ArtifactRef, data_ref: ArtifactRef) -> Result:
    """Supervised fine-tuning (summed NLL per response) on the demonstrations' train split."""
    from rlhf_core.eval.metrics import mean_token_nll
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import build_causal_lm, load_causal_lm, save_model
    from rlhf_core.train.offline import train_offline

    cfg = ctx.cfg.sft

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok, rows = load_tok(tok_ref), table(data_ref)
        model = (build_causal_lm(cfg.model.init, tok, ctx.cfg.seed) if cfg.model.init
                 else load_causal_lm(cfg.model, ctx.cfg.compute.quantization))
        train_rows = rows[rows["split"] == "train"]
        result = train_offline(model, tok, train_rows, "nll", cfg.train, work, compute=ctx.cfg.compute)
        model = result.model  # unwrapped (and LoRA-merged, unless lora.merge is false) by the engine
        saved = save_model(model, tok, out, cfg.model)
        loss_curve(result.history, out / "loss_curve.png", "SFT loss (summed NLL per response)")
        return {**saved, "train_rows": len(train_rows), "steps": result.steps, "final_loss": result.history[-1]["loss"],
                "val_nll_per_token": mean_token_nll(model, tok, rows[rows["split"] == "val"], cfg.train.max_length),
                "loss_curve": "loss_curve.png"}

    return ctx.build("sft_model", None, {"tokenizer": tok_ref, "data": data_ref}, build)


def _reward_model_reads(task) -> list[str]:
    # A scratch RM is built with the SFT network's sizes; the gold judge grades the held-out pairs.
    return ["reward_model", "seed", "compute", *(["sft.model.init"] if task.reward_model.init == "scratch" else []),
            *(["gold", "world"] if task.gold else [])]


@stage(_reward_model_reads)
def reward_model(ctx: Context, tok_ref: ArtifactRef, pairs_ref: ArtifactRef, sft_ref: ArtifactRef | None,
                 world_ref: ArtifactRef | None) -> Result:
    """Bradley-Terry RM; held-out accuracy against the labels (and the gold judge, when the task has one)."""
    from rlhf_core.eval.metrics import pairwise_accuracy
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import build_causal_lm, load_sequence_classifier, save_model
    from rlhf_core.rewards.classifiers import RewardModelLogitScorer
    from rlhf_core.train.reward_model import train_bradley_terry

    cfg = ctx.cfg.reward_model

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok, pairs = load_tok(tok_ref), table(pairs_ref)
        if cfg.init == "sft":
            model = load_sequence_classifier(ModelSource(path=sft_ref.path))
        else:
            from transformers import GPT2ForSequenceClassification

            model = GPT2ForSequenceClassification(build_causal_lm(ctx.cfg.sft.model.init, tok, ctx.cfg.seed).config)
        model.config.pad_token_id = tok.pad_token_id
        train_pairs = pairs[pairs["split"] == "train"]
        result = train_bradley_terry(model, tok, train_pairs, cfg.train, work, compute=ctx.cfg.compute)
        model = result.model
        saved = save_model(model, tok, out, ModelSource(path=sft_ref.path) if cfg.init == "sft" else None)
        loss_curve(result.history, out / "loss_curve.png", "Bradley-Terry loss")
        held = pairs[pairs["split"] == "test"]
        # Scored the way annotation scores with this RM (one scoring path, one truncation).
        rm = RewardModelLogitScorer(model=str(out), max_length=cfg.train.max_length, progress=False)
        s_c = np.array(rm(held["prompt"].tolist(), held["chosen"].tolist()))
        s_r = np.array(rm(held["prompt"].tolist(), held["rejected"].tolist()))
        meta = {**saved, "train_pairs": len(train_pairs), "heldout_pairs": len(held), "steps": result.steps,
                "final_loss": result.history[-1]["loss"], "loss_curve": "loss_curve.png",
                "heldout_accuracy_vs_labels": float(np.mean(s_c > s_r))}
        if world_ref is not None:
            from rlhf_core.demo.gold import judge

            gold = judge(table(world_ref), ctx.cfg.world, ctx.cfg.gold)
            g_c = np.array(gold(held["prompt"].tolist(), held["chosen"].tolist()))
            g_r = np.array(gold(held["prompt"].tolist(), held["rejected"].tolist()))
            meta["heldout_accuracy_vs_gold"] = pairwise_accuracy(s_c, s_r, g_c, g_r)
            meta["label_agreement_with_gold"] = pairwise_accuracy(np.ones(len(held)), np.zeros(len(held)), g_c, g_r)
        return meta

    parents = {"tokenizer": tok_ref, "pairs": pairs_ref, "sft": sft_ref, "world": world_ref}
    return ctx.build("reward_model", None, parents, build)
