"""One function per pipeline stage: the whole body of each Dagster asset, without Dagster.

Each takes the task config, the artifact store and its parents' ``ArtifactRef``s, builds (or
finds, when nothing changed) a content-addressed artifact, and returns ``(ref, metadata)``.
Metadata values are plain numbers and strings, ``pd.DataFrame`` previews and PNG ``Path``s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlhf_core.config import ModelSource, TaskConfig, to_dict
from rlhf_core.data.quarantine import CleanResult
from rlhf_core.store import ArtifactRef, ArtifactStore, read_table, write_table

TABLE = "table.parquet"
QUARANTINE = "quarantine.parquet"
Result = tuple[ArtifactRef, dict[str, Any]]


def _key(stage: str, section: Any, parents: dict[str, ArtifactRef], task: TaskConfig, **extra: Any) -> dict:
    return {"stage": stage, "task": task.task, "seed": task.seed, "config": to_dict(section),
            "parents": {k: v.content_hash for k, v in sorted(parents.items())}, **extra}


def _done(ref: ArtifactRef) -> Result:
    return ref, {**ref.meta()["metadata"], "artifact": ref.path, "content_hash": ref.content_hash,
                 "cached": ref.cached}


def table(ref: ArtifactRef) -> pd.DataFrame:
    return read_table(ref.file(TABLE))


def _write_clean(result: CleanResult, out: Path) -> dict[str, Any]:
    write_table(result.kept, out / TABLE)
    write_table(result.quarantined, out / QUARANTINE)
    return {**result.counts(), "quarantine_reasons": result.quarantined["reason"].value_counts().to_dict()}


# ----------------------------------------------------------------------------- data


def load_source(task: TaskConfig, store: ArtifactStore, name: str) -> Result:
    from rlhf_core.data.registry import get_loader

    src = task.sources[name]
    section = {"source": to_dict(src), "world": to_dict(task.world) if task.world else None}
    return _done(store.build(task.task, f"raw_{name}", None, _key("load", section, {}, task),
                             lambda out, _: _write_clean(get_loader(src.loader)(src, task), out)))


def build_dataset(task: TaskConfig, store: ArtifactStore, name: str, inputs: dict[str, ArtifactRef]) -> Result:
    from rlhf_core.data.registry import get_builder

    spec = task.datasets[name]

    def build(out: Path, _: Path) -> dict[str, Any]:
        return _write_clean(get_builder(spec.builder)({k: table(v) for k, v in inputs.items()}, spec, task), out)

    return _done(store.build(task.task, name, None, _key("build", spec, inputs, task), build))


# ----------------------------------------------------------------------------- models


def tokenizer(task: TaskConfig, store: ArtifactStore, corpora: dict[str, ArtifactRef]) -> Result:
    from rlhf_core.models.load import load_tokenizer, train_tokenizer

    cfg = task.tokenizer

    def build(out: Path, _: Path) -> dict[str, Any]:
        if cfg.source is not None:
            tok = load_tokenizer(cfg.source)
        else:
            texts = [t for ref in corpora.values() for col in ("prompt", "completion", "chosen", "rejected")
                     for df in [table(ref)] if col in df for t in df[col].tolist()]
            tok = train_tokenizer(texts, cfg.vocab_size, cfg.min_frequency)
        tok.save_pretrained(out)
        return {"vocab_size": len(tok)}

    return _done(store.build(task.task, "tokenizer", None, _key("tokenizer", cfg, corpora, task), build))


def _load_tok(ref: ArtifactRef):
    from rlhf_core.models.load import load_tokenizer

    return load_tokenizer(ModelSource(path=ref.path))


def sft_model(task: TaskConfig, store: ArtifactStore, tok_ref: ArtifactRef, data_ref: ArtifactRef) -> Result:
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import build_causal_lm, load_causal_lm, save_model
    from rlhf_core.train.offline import train_offline

    cfg = task.sft
    parents = {"tokenizer": tok_ref, "data": data_ref}

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok, rows = _load_tok(tok_ref), table(data_ref)
        model = build_causal_lm(cfg.model.init, tok, task.seed) if cfg.model.init else load_causal_lm(cfg.model)
        train_rows = rows[rows["split"] == "train"]
        result = train_offline(model, tok, train_rows, "nll", cfg.train, work)
        save_model(model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", "SFT loss (summed NLL per response)")
        return {"train_rows": len(train_rows), "steps": result.steps, "final_loss": result.history[-1]["loss"],
                "val_nll_per_token": mean_token_nll(model, tok, rows[rows["split"] == "val"], cfg.train.max_length),
                "loss_curve": "loss_curve.png"}

    return _done(store.build(task.task, "sft_model", None, _key("sft", cfg, parents, task), build))


def mean_token_nll(model, tok, rows: pd.DataFrame, max_length: int) -> float:
    import torch

    from rlhf_core.train.batching import collate, encode_pairs, token_logprobs

    enc = encode_pairs(tok, rows["prompt"].tolist(), rows["completion"].tolist(), max_length)
    total, count = 0.0, 0.0
    with torch.inference_mode():
        for s in range(0, len(enc.ids), 64):
            logp, mask = token_logprobs(model, collate(enc.ids[s : s + 64], enc.n_prompt[s : s + 64], tok.pad_token_id))
            total, count = total - float(logp.sum()), count + float(mask.sum())
    return total / count


def gold_scorer(task: TaskConfig, world_ref: ArtifactRef):
    from rlhf_core.demo.gold import GoldScorer, World

    return GoldScorer(World(table(world_ref), task.world), task.gold)


def reward_model(task: TaskConfig, store: ArtifactStore, tok_ref: ArtifactRef, pairs_ref: ArtifactRef,
                 sft_ref: ArtifactRef | None, world_ref: ArtifactRef | None) -> Result:
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import load_sequence_classifier, save_model
    from rlhf_core.train.reward_model import pairwise_accuracy, score, train_bradley_terry

    cfg = task.reward_model
    parents = {k: v for k, v in {"tokenizer": tok_ref, "pairs": pairs_ref, "sft": sft_ref, "world": world_ref}.items() if v}

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok, pairs = _load_tok(tok_ref), table(pairs_ref)
        if cfg.init == "sft":
            model = load_sequence_classifier(ModelSource(path=sft_ref.path))
        else:
            from transformers import GPT2ForSequenceClassification

            from rlhf_core.models.load import build_causal_lm

            lm = build_causal_lm(task.sft.model.init, tok, task.seed)
            model = GPT2ForSequenceClassification(lm.config)
        model.config.pad_token_id = tok.pad_token_id
        train_pairs = pairs[pairs["split"] == "train"]
        result = train_bradley_terry(model, tok, train_pairs, cfg.train, work)
        save_model(model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", "Bradley-Terry loss")
        held = pairs[pairs["split"] == "test"]
        s_c = score(model, tok, held["prompt"].tolist(), held["chosen"].tolist(), cfg.train.max_length)
        s_r = score(model, tok, held["prompt"].tolist(), held["rejected"].tolist(), cfg.train.max_length)
        meta = {"train_pairs": len(train_pairs), "heldout_pairs": len(held), "steps": result.steps,
                "final_loss": result.history[-1]["loss"], "loss_curve": "loss_curve.png",
                "heldout_accuracy_vs_labels": float(np.mean(s_c > s_r))}
        if world_ref is not None:
            gold = gold_scorer(task, world_ref)
            g_c = np.array(gold(held["prompt"].tolist(), held["chosen"].tolist()))
            g_r = np.array(gold(held["prompt"].tolist(), held["rejected"].tolist()))
            meta["heldout_accuracy_vs_gold"] = pairwise_accuracy(s_c, s_r, g_c, g_r)
            meta["label_agreement_with_gold"] = pairwise_accuracy(np.ones(len(held)), np.zeros(len(held)), g_c, g_r)
        return meta

    return _done(store.build(task.task, "reward_model", None, _key("reward_model", cfg, parents, task), build))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def reference_value(task: TaskConfig, store: ArtifactStore, sft_ref: ArtifactRef, rm_ref: ArtifactRef,
                    prompts_ref: ArtifactRef, data_ref: ArtifactRef) -> Result:
    """V_ref(x) and the advantage A = R - V_ref(x) of every offline training row (SPEC 6.2).

    R is sigmoid(reward-model logit), as for HHA, so V fits in (0, max_value) with max_value 1.
    """
    from safetensors.torch import save_model as save_head

    from rlhf_core.eval.generate import generate
    from rlhf_core.eval.plots import histogram
    from rlhf_core.models.load import load_causal_lm, load_sequence_classifier
    from rlhf_core.train.reward_model import score
    from rlhf_core.train.value import fit_value_head, predict_values, prompt_states

    cfg = task.reference_value
    parents = {"sft": sft_ref, "reward_model": rm_ref, "prompts": prompts_ref, "data": data_ref}

    def build(out: Path, _: Path) -> dict[str, Any]:
        tok = _load_tok(sft_ref)
        policy = load_causal_lm(ModelSource(path=sft_ref.path))
        rm = load_sequence_classifier(ModelSource(path=rm_ref.path))
        max_len = task.reward_model.train.max_length
        val = table(prompts_ref)
        val_prompts = val[val["split"] == "val"]["prompt"].tolist()
        gen = generate(policy, tok, val_prompts, cfg.generation, task.seed,
                       num_beams=cfg.num_beams, repetition_penalty=cfg.repetition_penalty)
        targets = _sigmoid(score(rm, tok, val_prompts, gen, max_len))
        head, curve = fit_value_head(prompt_states(policy, tok, val_prompts), targets, cfg, task.seed)
        save_head(head, str(out / "value_head.safetensors"))
        rows = table(data_ref)
        rows = rows[rows["split"] == "train"].reset_index(drop=True)
        rows["reward"] = _sigmoid(score(rm, tok, rows["prompt"].tolist(), rows["completion"].tolist(), max_len))
        unique = rows["prompt"].unique().tolist()
        values = dict(zip(unique, predict_values(head, prompt_states(policy, tok, unique))))
        rows["value"] = rows["prompt"].map(values)
        rows["advantage"] = rows["reward"] - rows["value"]
        write_table(rows, out / TABLE)
        histogram({"advantage": rows["advantage"].to_numpy()}, out / "advantages.png", "A = R - V_ref(x)")
        return {"val_prompts": len(val_prompts), "val_reward_mean": float(targets.mean()),
                "value_mse_per_epoch": [round(x, 5) for x in curve], "train_rows": len(rows),
                "positive_advantage_share": float((rows["advantage"] > 0).mean()),
                "advantage_histogram": "advantages.png", "preview": rows.head(5)}

    return _done(store.build(task.task, "reference_value", None, _key("reference_value", cfg, parents, task), build))


# ----------------------------------------------------------------------------- RL and evaluation

BASELINE = "sft"  # the policy partition that is the SFT reference itself, untouched by RL


def policy_partitions(task: TaskConfig) -> list[str]:
    return [BASELINE, *task.policy.algorithms]


def policy(task: TaskConfig, store: ArtifactStore, algorithm: str, sft_ref: ArtifactRef,
           value_ref: ArtifactRef, pairs_ref: ArtifactRef) -> Result:
    """Fine-tune the SFT reference with one algorithm; the ``sft`` partition is the reference itself."""
    from rlhf_core.eval.plots import loss_curve
    from rlhf_core.models.load import load_causal_lm, save_model
    from rlhf_core.train.losses import OFFLINE_ALGORITHMS, PREFERENCE_ALGORITHMS
    from rlhf_core.train.offline import train_dpo, train_offline

    if algorithm == BASELINE:
        return sft_ref, {"algorithm": BASELINE, "artifact": sft_ref.path, "content_hash": sft_ref.content_hash}
    if algorithm not in OFFLINE_ALGORITHMS + PREFERENCE_ALGORITHMS:
        raise ValueError(f"policy.algorithms: unknown algorithm {algorithm!r}; "
                         f"known: {OFFLINE_ALGORITHMS + PREFERENCE_ALGORITHMS}")
    cfg = task.policy
    preference = algorithm in PREFERENCE_ALGORITHMS
    parents = {"sft": sft_ref, "data": pairs_ref if preference else value_ref}

    def build(out: Path, work: Path) -> dict[str, Any]:
        tok = _load_tok(sft_ref)
        model = load_causal_lm(ModelSource(path=sft_ref.path))
        rows = table(parents["data"])
        rows = rows[rows["split"] == "train"].reset_index(drop=True) if "split" in rows else rows
        if preference:
            result = train_dpo(model, tok, rows, cfg, work, reference_free=algorithm == "dpo_ref_free")
        else:
            result = train_offline(model, tok, rows, algorithm, cfg.train, work, cfg)
        save_model(model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", f"{algorithm} loss")
        last = result.history[-1]
        return {"algorithm": algorithm, "train_rows": len(rows), "steps": result.steps,
                "final_loss": last["loss"], "loss_curve": "loss_curve.png",
                **{k: v for k, v in last.items() if k not in ("step", "loss", "lr")}}

    section = {"policy": cfg, "algorithm": algorithm}
    return _done(store.build(task.task, "policy", algorithm, _key("policy", section, parents, task), build))


def generations(task: TaskConfig, store: ArtifactStore, algorithm: str, policy_ref: ArtifactRef,
                prompts_ref: ArtifactRef) -> Result:
    from rlhf_core.eval.generate import generate
    from rlhf_core.models.load import load_causal_lm

    cfg = task.evaluation
    parents = {"policy": policy_ref, "prompts": prompts_ref}

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = table(prompts_ref)
        rows = rows[rows["split"] == cfg.split][["id", "prompt"]].reset_index(drop=True)
        model = load_causal_lm(ModelSource(path=policy_ref.path))
        rows["completion"] = generate(model, _load_tok(policy_ref), rows["prompt"].tolist(), cfg.generation, task.seed)
        write_table(rows, out / TABLE)
        return {"rows": len(rows), "empty_completions": int((rows["completion"].str.strip() == "").sum()),
                "preview": rows.head(8)}

    return _done(store.build(task.task, "generations", algorithm, _key("generations", cfg, parents, task), build))


def evaluation(task: TaskConfig, store: ArtifactStore, algorithm: str, gen_ref: ArtifactRef,
               rm_ref: ArtifactRef, world_ref: ArtifactRef | None) -> Result:
    """Gold reward and components, RM reward, length and distinct-n of one algorithm's samples."""
    from rlhf_core.eval.metrics import distinct_n
    from rlhf_core.models.load import load_sequence_classifier
    from rlhf_core.train.reward_model import score

    parents = {k: v for k, v in {"generations": gen_ref, "reward_model": rm_ref, "world": world_ref}.items() if v}

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = table(gen_ref)
        prompts, completions = rows["prompt"].tolist(), rows["completion"].tolist()
        rm = load_sequence_classifier(ModelSource(path=rm_ref.path))
        rows["rm_reward"] = score(rm, _load_tok(rm_ref), prompts, completions, task.reward_model.train.max_length)
        rows["length"] = [len(c.split()) for c in completions]
        if world_ref is not None:
            comps = gold_scorer(task, world_ref).components(prompts, completions)
            rows = pd.concat([rows, comps.rename(columns={"gold": "gold_reward"})], axis=1)
        write_table(rows, out / TABLE)
        numeric = rows.select_dtypes("number").mean().to_dict()
        summary = {"algorithm": algorithm, "n": len(rows), **{k: float(v) for k, v in numeric.items()},
                   "distinct_1": distinct_n(completions, 1), "distinct_2": distinct_n(completions, 2)}
        return {**summary, "summary": summary}

    return _done(store.build(task.task, "evaluation", algorithm, _key("evaluation", {}, parents, task), build))


LEADERBOARD_COLUMNS = ["algorithm", "gold_reward", "rm_reward", "length", "distinct_1", "distinct_2",
                       "relevance", "factuality", "completeness", "toxicity", "n"]


def leaderboard(task: TaskConfig, store: ArtifactStore, evaluations: dict[str, ArtifactRef], export: Path) -> Result:
    from rlhf_core.eval.plots import bar_chart

    rows = pd.DataFrame([ref.meta()["metadata"]["summary"] for ref in evaluations.values()])
    rows = rows[[c for c in LEADERBOARD_COLUMNS if c in rows]]
    sort_by = "gold_reward" if "gold_reward" in rows else "rm_reward"
    rows = rows.sort_values(sort_by, ascending=False).reset_index(drop=True)

    def build(out: Path, _: Path) -> dict[str, Any]:
        write_table(rows, out / TABLE)
        rows.to_csv(out / "leaderboard.csv", index=False, float_format="%.4f")
        bar_chart(rows, "algorithm", [c for c in ("gold_reward", "rm_reward") if c in rows], out / "leaderboard.png")
        return {"algorithms": len(rows), "best": rows.loc[0, "algorithm"], "table": rows, "plot": "leaderboard.png"}

    ref, meta = _done(store.build(task.task, "leaderboard", None, _key("leaderboard", {}, evaluations, task), build))
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_name(f".tmp-{export.name}")
    tmp.write_bytes(ref.file("leaderboard.csv").read_bytes())
    tmp.replace(export)
    return ref, {**meta, "exported_to": str(export)}


# ----------------------------------------------------------------------------- annotation


def annotate(task: TaskConfig, store: ArtifactStore, scorer_name: str, data_ref: ArtifactRef,
             world_ref: ArtifactRef | None) -> Result:
    """Score every row of the annotation table with one scorer (one partition per scorer)."""
    from rlhf_core.eval.plots import histogram
    from rlhf_core.rewards.base import build_scorer

    parents = {k: v for k, v in {"data": data_ref, "world": world_ref}.items() if v}

    def build(out: Path, _: Path) -> dict[str, Any]:
        rows = table(data_ref)
        prompts, completions = rows["prompt"].tolist(), rows["completion"].tolist()
        if scorer_name == "gold":
            scores = gold_scorer(task, world_ref).components(prompts, completions)
        elif scorer_name == "diversity":  # tf-idf state is fitted on the training responses
            from rlhf_core.rewards.simple import TfidfDiversityScorer

            scorer = TfidfDiversityScorer.fit(rows.loc[rows["split"] == "train", "completion"].tolist())
            scorer.save(out / "tfidf_state.json")
            scores = pd.DataFrame({"diversity": scorer(prompts, completions)})
        else:
            scores = pd.DataFrame({scorer_name: build_scorer(scorer_name)(prompts, completions)})
        scored = pd.concat([rows[["id", "split"]], scores], axis=1)
        write_table(scored, out / TABLE)
        main = scores[scorer_name]
        histogram({scorer_name: main.to_numpy()}, out / "histogram.png", f"{scorer_name} over {len(rows)} rows")
        return {"rows": len(rows), "mean": float(main.mean()), "std": float(main.std()),
                "histogram": "histogram.png", "means": scores.mean().round(4).to_dict()}

    key = _key("annotate", {"scorer": scorer_name}, parents, task)
    return _done(store.build(task.task, "annotated_responses", scorer_name, key, build))
