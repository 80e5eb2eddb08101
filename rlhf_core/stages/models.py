"""Model stages: the tokenizer and the SFT reference (reward models: ``stages.reward_models``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
            texts = [
                t
                for ref in corpora.values()
                for df in [table(ref)]
                for col in CORPUS_COLUMNS
                if col in df
                for t in df[col].tolist()
            ]
            tok = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
        tok.save_pretrained(out)
        return {"vocab_size": len(tok)}

    return ctx.build("tokenizer", None, corpora, build)


@stage(lambda task: ["sft", "seed", "compute"], spreads=True)  # trains on the engine
def sft_model(ctx: Context, tok: ArtifactRef, data: ArtifactRef) -> Result:
    """Supervised fine-tuning (summed NLL per response) on the demonstrations' train split."""
    from rlhf_core.eval.metrics import mean_token_nll
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import build_causal_lm, load_causal_lm, save_model
    from rlhf_core.train.offline import train_offline

    cfg = ctx.cfg.sft

    def build(out: Path, work: Path) -> dict[str, Any]:
        tokenizer, rows = load_tok(tok), table(data)
        model = (
            build_causal_lm(cfg.model.init, tokenizer, ctx.cfg.seed)
            if cfg.model.init
            else load_causal_lm(cfg.model, ctx.cfg.compute.quantization)
        )
        train_rows = rows[rows["split"] == "train"]
        result = train_offline(
            model, tokenizer, train_rows, "nll", cfg.train, work, compute=ctx.cfg.compute, desc="train"
        )
        model = result.model  # unwrapped (and LoRA-merged, unless lora.merge is false) by the engine
        saved = save_model(model, tokenizer, out, cfg.model)
        loss_curve(result.history, out / "loss_curve.png", "SFT loss (summed NLL per response)")
        return {
            **saved,
            "train_rows": len(train_rows),
            "steps": result.steps,
            "resumed_from": result.resumed_from,
            "final_loss": result.history[-1]["loss"],
            "val_nll_per_token": mean_token_nll(model, tokenizer, rows[rows["split"] == "val"], cfg.train.max_length),
            "loss_curve": "loss_curve.png",
        }

    return ctx.build("sft_model", None, {"tokenizer": tok, "data": data}, build)
