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
from rlhf_core.data.quarantine import QUARANTINE_COLUMNS, CleanResult
from rlhf_core.store import ArtifactRef, ArtifactStore, read_table, write_table

TABLE = "table.parquet"
QUARANTINE = "quarantine.parquet"
Result = tuple[ArtifactRef, dict[str, Any]]


def _key(stage: str, section: Any, parents: dict[str, ArtifactRef], task: TaskConfig, **extra: Any) -> dict:
    return {"stage": stage, "task": task.task, "seed": task.seed, "config": to_dict(section),
            "parents": {k: v.content_hash for k, v in sorted(parents.items())}, **extra}


def _train_key(stage: str, section: Any, parents: dict[str, ArtifactRef], task: TaskConfig) -> dict:
    """A trained model also depends on how it was computed (precision, LoRA, micro-batches)."""
    return _key(stage, section, parents, task, compute=to_dict(task.compute))


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
        model = (build_causal_lm(cfg.model.init, tok, task.seed) if cfg.model.init
                 else load_causal_lm(cfg.model, task.compute.quantization))
        train_rows = rows[rows["split"] == "train"]
        result = train_offline(model, tok, train_rows, "nll", cfg.train, work, compute=task.compute)
        model = result.model
        save_model(model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", "SFT loss (summed NLL per response)")
        return {"train_rows": len(train_rows), "steps": result.steps, "final_loss": result.history[-1]["loss"],
                "val_nll_per_token": mean_token_nll(model, tok, rows[rows["split"] == "val"], cfg.train.max_length),
                "loss_curve": "loss_curve.png"}

    return _done(store.build(task.task, "sft_model", None, _train_key("sft", cfg, parents, task), build))


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
        result = train_bradley_terry(model, tok, train_pairs, cfg.train, work, compute=task.compute)
        model = result.model
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

    return _done(store.build(task.task, "reward_model", None, _train_key("reward_model", cfg, parents, task), build))


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
        model = load_causal_lm(ModelSource(path=sft_ref.path), task.compute.quantization)
        rows = table(parents["data"])
        rows = rows[rows["split"] == "train"].reset_index(drop=True) if "split" in rows else rows
        if preference:
            result = train_dpo(model, tok, rows, cfg, work, reference_free=algorithm == "dpo_ref_free",
                               compute=task.compute)
        else:
            result = train_offline(model, tok, rows, algorithm, cfg.train, work, cfg, compute=task.compute)
        save_model(result.model, tok, out)
        loss_curve(result.history, out / "loss_curve.png", f"{algorithm} loss")
        last = result.history[-1]
        return {"algorithm": algorithm, "train_rows": len(rows), "steps": result.steps,
                "final_loss": last["loss"], "loss_curve": "loss_curve.png",
                **{k: v for k, v in last.items() if k not in ("step", "loss", "lr")}}

    section = {"policy": cfg, "algorithm": algorithm}
    return _done(store.build(task.task, "policy", algorithm, _train_key("policy", section, parents, task), build))


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

SCORER_SPEC = "scorer.json"


def reward_scorer(task: TaskConfig, store: ArtifactStore, component: str, data_ref: ArtifactRef | None,
                  world_ref: ArtifactRef | None, model_refs: dict[str, ArtifactRef]) -> Result:
    """Resolve one reward component into a scorer that loads: fitted state, parameters, weights hash.

    The artifact's content is the scorer's identity. Its annotations are reused while it is
    unchanged and go stale (in Dagster and in the store) only when it changes.
    """
    from rlhf_core.rewards.simple import TfidfDiversityScorer
    from rlhf_core.store import hash_dir, write_json_atomic

    spec = task.annotation.scorers[component]
    model_ref = model_refs.get(spec.model_asset) if spec.model_asset else None
    parents = {k: v for k, v in {"data": data_ref, "world": world_ref, "model": model_ref}.items() if v}

    def build(out: Path, _: Path) -> dict[str, Any]:
        params = {**spec.params, **({"model": model_ref.path} if model_ref else {})}
        if spec.scorer == "diversity" and "state_path" not in params:
            if data_ref is None:
                raise ValueError(f"scorer {component!r}: diversity needs annotation.data to fit on, or params.state_path")
            train = table(data_ref).query("split == 'train'")["completion"].tolist()
            if not any(t.strip() for t in train):
                raise ValueError(f"scorer {component!r}: no train-split completions in {task.annotation.data!r} "
                                 "to fit the tf-idf vectoriser on")
            TfidfDiversityScorer.fit(train).save(out / "tfidf_state.json")
        scorer = _load_scorer(task, component, spec.scorer, params, out, world_ref)
        model_dir = Path(str(params.get("model", "")))
        weights = (world_ref.content_hash if spec.scorer == "gold"
                   else hash_dir(model_dir) if params.get("model") and model_dir.is_dir() else None)
        write_json_atomic(out / SCORER_SPEC, {"component": component, "scorer": spec.scorer, "params": params,
                                              "version": scorer.version, "weights": weights})
        return {"scorer": spec.scorer, "scorer_code_version": scorer.version, "weights_hash": str(weights),
                "params": {k: str(v) for k, v in params.items()}}

    return _done(store.build(task.task, "reward_scorers", component,
                             _key("scorer", {"component": component, "spec": spec}, parents, task), build))


def _load_scorer(task: TaskConfig, component: str, name: str, params: dict[str, Any], scorer_dir: Path,
                 world_ref: ArtifactRef | None):
    from rlhf_core.rewards.base import ScorerLoadError, build_scorer

    try:
        if name == "gold":
            return gold_scorer(task, world_ref)
        if name == "diversity" and "state_path" not in params:
            params = {**params, "state_path": str(scorer_dir / "tfidf_state.json")}
        return build_scorer(name, **params)
    except Exception as err:
        raise ScorerLoadError(f"reward component {component!r}: scorer {name!r} failed to load "
                              f"({type(err).__name__}: {err})") from err


def annotate_shard(task: TaskConfig, store: ArtifactStore, component: str, shard: int, data_ref: ArtifactRef,
                   scorer_ref: ArtifactRef, world_ref: ArtifactRef | None) -> Result:
    """Score one shard of the task's dataset with one component's scorer, reusing earlier scores."""
    from rlhf_core.rewards.annotate import shard_of

    rows = annotation_rows(data_ref)
    in_shard = [shard_of(p, c, task.annotation.shards) == shard for p, c in zip(rows["prompt"], rows["completion"])]
    rows = rows.loc[in_shard, ["row_id", "prompt", "completion"]].reset_index(drop=True)
    parents = {k: v for k, v in {"data": data_ref, "scorer": scorer_ref, "world": world_ref}.items() if v}
    return _annotate(task, store, "annotated_responses", f"{component}/shard-{shard}", rows, None, scorer_ref,
                     world_ref, _key("annotate", {"component": component, "shard": shard,
                                                  "shards": task.annotation.shards}, parents, task))


def annotate_incoming(task: TaskConfig, store: ArtifactStore, component: str, date: str,
                      scorer_ref: ArtifactRef, world_ref: ArtifactRef | None) -> Result:
    """Score the responses dropped into the incoming folder on ``date`` (an empty day scores nothing)."""
    from rlhf_core.rewards.incoming import content_fingerprint

    day = incoming_day(task, date)
    result = _read_incoming(day)
    parents = {k: v for k, v in {"scorer": scorer_ref, "world": world_ref}.items() if v}
    key = _key("annotate_incoming", {"component": component, "date": date}, parents, task,
               files=content_fingerprint(day) if day.is_dir() else None)
    ref, meta = _annotate(task, store, "annotated_incoming", f"{component}/{date}", result.kept,
                          result.quarantined, scorer_ref, world_ref, key)
    return ref, {**meta, "incoming_folder": str(day)}


def incoming_folder(task: TaskConfig) -> Path:
    """Where new responses are dropped (relative paths are under the repo root)."""
    from rlhf_core.config import PROJECT_ROOT

    return PROJECT_ROOT / task.annotation.incoming.folder


def incoming_day(task: TaskConfig, date: str) -> Path:
    return incoming_folder(task) / date


def _read_incoming(day: Path) -> CleanResult:
    from rlhf_core.rewards.incoming import INCOMING_COLUMNS, read_day

    if day.is_dir():
        return read_day(day)
    return CleanResult(pd.DataFrame(columns=INCOMING_COLUMNS), pd.DataFrame(columns=QUARANTINE_COLUMNS), {}, 0)


def _annotate(task: TaskConfig, store: ArtifactStore, asset: str, partition: str, rows: pd.DataFrame,
              input_quarantine: pd.DataFrame | None, scorer_ref: ArtifactRef, world_ref: ArtifactRef | None,
              key: dict[str, Any]) -> Result:
    import json

    from rlhf_core.eval.plots import histogram
    from rlhf_core.rewards.annotate import annotate

    spec = json.loads(scorer_ref.file(SCORER_SPEC).read_text())
    version = scorer_ref.content_hash  # covers the code version, the parameters and the weights

    def build(out: Path, _: Path) -> dict[str, Any]:
        scorer = _load_scorer(task, spec["component"], spec["scorer"], spec["params"], scorer_ref.dir, world_ref)
        previous = next((table(r) for r in store.previous(task.task, asset, partition)
                         if r.meta()["metadata"].get("scorer_version") == version), None)
        result = annotate(rows, scorer, previous, version=version)
        quarantined = pd.concat([q for q in (input_quarantine, result.quarantined) if q is not None and len(q)]
                                or [result.quarantined], ignore_index=True)
        write_table(result.scored, out / TABLE)
        write_table(quarantined, out / QUARANTINE)
        scores = result.scored["score"]
        meta = {**result.stats, "input_quarantined": 0 if input_quarantine is None else len(input_quarantine),
                "scorer": spec["scorer"], "scorer_version": version,
                "quarantine_reasons": quarantined["reason"].value_counts().to_dict()}
        if len(scores):
            histogram({spec["component"]: scores.to_numpy()}, out / "histogram.png",
                      f"{spec['component']} ({spec['scorer']}) over {len(scores)} rows")
            meta.update(mean=float(scores.mean()), std=float(scores.std(ddof=0)), histogram="histogram.png")
        return meta

    ref, meta = _done(store.build(task.task, asset, partition, key, build))
    # A cached artifact means this run scored nothing: every row's score was already there.
    if ref.cached:
        meta = {**meta, "scored_this_run": 0, "reused_this_run": meta["scored"] + meta["reused"]}
    else:
        meta = {**meta, "scored_this_run": meta["scored"], "reused_this_run": meta["reused"]}
    return ref, meta


def combine_rewards(task: TaskConfig, store: ArtifactStore, asset: str, partition: str | None,
                    annotations: dict[str, list[ArtifactRef]], rows: pd.DataFrame) -> Result:
    """The task's reward per row: ``sum_k weight_k * score_k`` over its components (SPEC 3.2, 3.3).

    Args:
        annotations: Component name -> its annotation artifacts (one per shard or day).
        rows: ``row_id``, ``prompt``, ``completion`` (and ``split``) of every annotated row.

    A row that lacks a weighted component's score (that scorer quarantined it) is quarantined
    here too, with the reason; components of weight 0 are reported as columns only.
    """
    from rlhf_core.data.quarantine import Ledger
    from rlhf_core.eval.plots import histogram

    weights = {name: spec.weight for name, spec in task.annotation.scorers.items()}
    parents = {f"{name}/{i}": ref for name, refs in annotations.items() for i, ref in enumerate(refs)}

    def build(out: Path, _: Path) -> dict[str, Any]:
        frame = rows.copy()
        for name, refs in sorted(annotations.items()):
            scores = pd.concat([table(r) for r in refs], ignore_index=True)
            frame[name] = frame["row_id"].map(dict(zip(scores["row_id"], scores["score"])))
        weighted = [k for k, w in weights.items() if w != 0]
        missing = frame[weighted].isna()
        ledger = Ledger(source=asset, n_input=len(frame))
        for i in np.flatnonzero(missing.any(axis=1).to_numpy()):
            lacking = [k for k in weighted if missing.iloc[i][k]]
            ledger.quarantine_row(frame.iloc[i]["row_id"], lacking[0], f"no {', '.join(lacking)} score "
                                  "(quarantined by that scorer)", frame.iloc[i][["prompt", "completion"]].to_dict())
        kept = frame[~missing.any(axis=1)].copy()
        kept["reward"] = sum(w * kept[k] for k, w in weights.items() if w != 0)
        result = ledger.result(kept)
        write_table(result.kept, out / TABLE)
        write_table(result.quarantined, out / QUARANTINE)
        meta = {**result.counts(), "weights": weights,
                "component_means": kept[list(weights)].mean().round(4).to_dict(),
                # How the components agree (e.g. a trained RM against the gold judge): Pearson r.
                "correlations": kept[list(weights)].corr().round(3).reset_index(names="component")}
        if len(kept):
            histogram({"reward": kept["reward"].to_numpy()}, out / "histogram.png", f"reward over {len(kept)} rows")
            meta.update(reward_mean=float(kept["reward"].mean()), histogram="histogram.png",
                        preview=kept.drop(columns=["prompt"]).head(5))
        return meta

    key = _key("rewards", {"weights": weights}, parents, task, rows=pd.util.hash_pandas_object(rows).sum().item())
    return _done(store.build(task.task, asset, partition, key, build))


def annotation_rows(data_ref: ArtifactRef) -> pd.DataFrame:
    return table(data_ref).rename(columns={"id": "row_id"})


def incoming_rows(task: TaskConfig, date: str) -> pd.DataFrame:
    return _read_incoming(incoming_day(task, date)).kept
