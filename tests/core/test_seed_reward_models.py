"""Each seed task's reward models train on its fixture data (tiny random models of the real
architectures) and score through the scorer registry; [CRS]'s combined reward is their weighted sum."""

from __future__ import annotations

import json
import math

import pytest

from rlhf_core.rewards.base import build_scorer
from rlhf_core.stages import reward_models, rm_kinds
from rlhf_core.store import ArtifactStore, write_table
from tests import tiny_models
from tests.core.data.data_helpers import build_task, load_task
from tests.dagster.test_seed_tasks import header_overrides

TINY_TRAIN = "{epochs: 1, batch_size: 4, lr: 1.0e-3, max_length: 64}"


def train_all(task_name: str, overrides: list[str], tmp_path):
    """Every RM of the task, trained on the fixture tables; ``(config, {name: ref}, tables)``."""
    cfg = load_task(task_name, [*header_overrides(task_name)[0], *overrides])
    needed = {d for spec in cfg.reward_models.values() for d in reward_models.rm_datasets(spec)}
    tables = {name: res.kept for name, res in build_task(cfg, only=needed).items() if name in needed}
    store = ArtifactStore(tmp_path / "store")
    data = {}
    for name, rows in tables.items():
        data[name] = store.build(
            task_name, name, None, {"n": name}, lambda out, _, rows=rows: write_table(rows, out / "table.parquet") or {}
        )
    refs = {
        name: reward_models.reward_model(
            cfg, store, name, None, None, {d: data[d] for d in reward_models.rm_datasets(spec)}, None
        )[0]
        for name, spec in cfg.reward_models.items()
    }
    return cfg, refs, tables


def scores_of(ref, rows, n: int = 4):
    rows = rows.head(n)
    response = rows["completion"] if "completion" in rows else rows["chosen"]
    return build_scorer("reward_model", model=ref.path, progress=False)(rows["prompt"].tolist(), response.tolist())


def test_oasst_crs_ranking_and_absolute_rms_and_the_combined_reward(tmp_path):
    from rlhf_core.rewards.combine import RewardFunction, terms

    tiny = "{path: data/fixtures/rlhflow/tiny-llama3-rm}"
    cfg, refs, tables = train_all(
        "oasst_crs",
        [
            f"reward_models.{n}.{k}={v}"
            for n in ("ranking", "absolute")
            for k, v in (("model", tiny), ("train", TINY_TRAIN), ("quantization", "null"))
        ],
        tmp_path,
    )
    for name in ("ranking", "absolute"):  # adapter-only artifacts naming the one base both share
        assert json.loads((refs[name].dir / "adapter_base.json").read_text())["source"]["path"] == tiny[7:-1]
    rows = tables["absolute_rm"].head(4)
    ranking, absolute = scores_of(refs["ranking"], rows), scores_of(refs["absolute"], rows)
    assert all(math.isfinite(s) for s in ranking + absolute)
    scorers = {
        c: build_scorer("reward_model", model=refs[spec.partition].path, progress=False)
        for c, spec in cfg.annotation.scorers.items()
    }
    crs = RewardFunction(scorers, terms(cfg.annotation.scorers))(rows["prompt"].tolist(), rows["completion"].tolist())
    assert crs == pytest.approx([0.25 * r + 0.75 * a for r, a in zip(ranking, absolute)], rel=1e-5)


def test_oasst_crs_rms_declare_the_seeds_8bit_base_adapters_and_optimiser():
    from rlhf_core.config import ConfigError

    cfg = load_task("oasst_crs")
    for spec in cfg.reward_models.values():
        assert spec.quantization == "8bit" and spec.model.hub_id == "andreaskoepf/llama2-7b-oasst-baseline"
        assert (spec.lora.r, spec.lora.alpha, spec.lora.merge) == (16, 32, False)
        assert (spec.train.lr_schedule, spec.train.adam_beta2, spec.train.warmup_ratio) == ("cosine", 0.95, 0.03)
    with pytest.raises(ConfigError, match="quantization loads a pretrained `model`"):
        load_task("oasst_crs", ["reward_models.ranking.lora=null"])


@pytest.fixture
def tiny_distilbert(tmp_path):
    return tiny_models.distilbert(tmp_path / "distilbert")


def test_hh_rlhf_distilbert_bradley_terry_rm(tmp_path, tiny_distilbert):
    _, refs, tables = train_all(
        "hh_rlhf",
        [f"reward_models.distilbert.model={{path: {tiny_distilbert}}}", f"reward_models.distilbert.train={TINY_TRAIN}"],
        tmp_path,
    )
    assert all(math.isfinite(s) for s in scores_of(refs["distilbert"], tables["rm_pairs"]))


@pytest.fixture
def tiny_longformer(tmp_path):
    return tiny_models.longformer(tmp_path / "longformer")


def test_qa_feedback_token_and_preference_rms(tmp_path, tiny_longformer):
    names = ("relevance", "factuality", "holistic", "completeness")
    train = TINY_TRAIN.replace("max_length: 64", f"max_length: {tiny_models.LONG}")  # R2 inputs carry the passages
    _, refs, tables = train_all(
        "qa_feedback",
        [
            f"reward_models.{n}.{k}={v}"
            for n in names
            for k, v in (("model", f"{{path: {tiny_longformer}}}"), ("train", train))
        ],
        tmp_path,
    )
    for name, pairs in (("holistic", "holistic_pairs"), ("completeness", "comp_pairs")):
        assert all(math.isfinite(s) for s in scores_of(refs[name], tables[pairs]))
    prompt, answer = "question: who wrote it? answer:", "It was written by a man. He lived in Paris, France."
    for name in ("relevance", "factuality"):
        scorer = build_scorer("reward_model", model=refs[name].path)
        (errors,) = scorer.segment_errors([prompt], [answer])
        assert len(errors) == 2  # two sentences; the comma starts no sub-sentence (fewer than 5 words follow)
        assert scorer([prompt], [answer]) == [sum(-1.0 if e else 1.0 for e in errors)]


TINY_LLAMA3 = "data/fixtures/rlhflow/tiny-llama3-rm"


def test_rf_bt_text_is_the_chat_rendered_conversation_cut_on_the_left():
    from rlhf_core.config import ModelSource
    from rlhf_core.data.chat import conversation_prompt
    from rlhf_core.models.load import load_tokenizer
    from rlhf_core.train.reward_model import encode_texts, rm_text

    tok = load_tokenizer(ModelSource(path=TINY_LLAMA3))
    context = conversation_prompt(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a colour."},
        ]
    )
    turn = "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>"
    text = rm_text(context, "Blue.", "{response}", tok)  # the template's BOS text is removed
    assert text == "".join(
        turn.format(r, c)
        for r, c in (("user", "Hi"), ("assistant", "Hello!"), ("user", "Name a colour."), ("assistant", "Blue."))
    )
    assert rm_text("Name a colour.", "Blue.", "{response}", tok) == turn.format("user", "Name a colour.") + turn.format(
        "assistant", "Blue."
    )  # a plain prompt is one user message
    full = tok(text)["input_ids"]
    assert full[0] == tok.bos_token_id and full.count(tok.bos_token_id) == 1  # the tokenizer's own BOS, once
    # [RF] truncates on the left: the BOS and the end of the conversation (the answer) stay
    (cut,) = encode_texts(tok, [text], 8, "left")
    assert cut == [tok.bos_token_id] + full[-7:]
    assert tok.convert_ids_to_tokens(cut[1:]) == ["\n\n", "B", "l", "u", "e", ".", "<|eot_id|>"]  # a char vocabulary


def test_rlhflow_bt_pair_pm_and_armo_on_reward_bench(tmp_path):
    """All three [RF] RMs train on the fixtures and score through the registry; RewardBench's
    section scores equal the official-count weighting of each model's own per-example correctness."""
    import numpy as np
    import pandas as pd

    from rlhf_core.stages import reward_bench

    tiny = f"{{path: {TINY_LLAMA3}}}"
    cfg, refs, tables = train_all(
        "rlhflow",
        [
            *(
                f"reward_models.{n}.{k}={v}"
                for n in ("bt", "pair_pm")
                for k, v in (("model", tiny), ("train", TINY_TRAIN))
            ),
            "reward_models.armo.gating_steps=20",
            "reward_models.armo.train={batch_size: 16, lr: 1.0e-3}",
        ],
        tmp_path,
    )
    store = ArtifactStore(tmp_path / "store")
    built = build_task(cfg, only={"reward_bench", "reward_bench_embeddings"})
    texts, embedded = built["reward_bench"].kept, built["reward_bench_embeddings"].kept
    bench = {
        name: store.build(
            "rlhflow", name, None, {}, lambda out, _, rows=rows: write_table(rows, out / "table.parquet") or {}
        )
        for name, rows in (("reward_bench", texts), ("reward_bench_embeddings", embedded))
    }
    ref, _ = reward_bench.reward_bench(cfg, store, refs, bench["reward_bench"], bench["reward_bench_embeddings"])
    board = pd.read_parquet(ref.file("table.parquet")).set_index("model")
    assert board.index.tolist() == ["bt", "pair_pm", "armo"]
    assert list(embedded["id"]) == list(texts["id"])  # every fixture pair was embedded: the same examples

    # [RF]'s BT gets its own pad token, so a conversation's final <|eot_id|> is never taken for padding
    bt_scorer = build_scorer("reward_model", model=refs["bt"].path, progress=False)
    assert bt_scorer.tokenizer.pad_token == "[PAD]" and bt_scorer.pad_id == len(bt_scorer.tokenizer) - 1
    assert bt_scorer.model.config.pad_token_id == bt_scorer.pad_id != bt_scorer.tokenizer.eos_token_id

    # Per-example correctness from the scorers, called directly on the texts.
    prompts, chosen, rejected = (texts[c].tolist() for c in ("prompt", "chosen", "rejected"))
    scalar = {n: build_scorer("reward_model", model=refs[n].path, progress=False) for n in ("bt", "armo")}
    right = {
        n: [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(s(prompts, chosen), s(prompts, rejected))]
        for n, s in scalar.items()
    }
    p_chosen = build_scorer("reward_model", model=refs["pair_pm"].path).preference(prompts, chosen, rejected)
    right["pair_pm"] = [1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0 for p in p_chosen]
    # ArmoRM on the texts (backbone forward here) agrees with its head on RewardBench's embedding table
    from rlhf_core.stages.reward_models import read_spec
    from rlhf_core.train.armo_rm import table_scores

    head = table_scores(refs["armo"].dir, read_spec(refs["armo"]), embedded)
    np.testing.assert_allclose(head[:, 0], scalar["armo"](prompts, chosen), rtol=1e-4, atol=1e-5)

    # The official counts of the fixture's subsets (one example each), by section.
    sections = {
        "Chat": {"alpacaeval-easy": 100},
        "Chat Hard": {"mt-bench-hard": 37},
        "Safety": {"xstest-should-refuse": 154, "xstest-should-respond": 250, "donotanswer": 136},
        "Reasoning": {"math-prm": 984, "hep-python": 164},
    }
    subset = texts["subset"].tolist()
    assert sorted(subset) == sorted(s for counts in sections.values() for s in counts)
    for model in ("bt", "pair_pm", "armo"):
        accuracy = dict(zip(subset, right[model]))
        for section, counts in sections.items():
            expected = 100 * sum(n * accuracy[s] for s, n in counts.items()) / sum(counts.values())
            assert board.loc[model, section] == pytest.approx(expected), (model, section)
        assert board.loc[model, "overall"] == pytest.approx(np.mean([board.loc[model, s] for s in sections]))

    # Judged on its own pair embeddings (the seed's eval monitors fit: eval_split train) by the head alone
    from rlhf_core.stages import rm_eval

    data = {
        name: store.build(
            "rlhflow",
            name,
            None,
            {"n": name},  # train_all's own artifacts
            lambda out, _, rows=tables[name]: write_table(rows, out / "table.parquet") or {},
        )
        for name in ("armorm_objective_embeddings", "armorm_pair_embeddings")
    }
    _, meta = rm_eval.reward_model_eval(cfg, store, "armo", refs["armo"], data, None)
    scores = table_scores(refs["armo"].dir, read_spec(refs["armo"]), tables["armorm_pair_embeddings"])
    assert meta["heldout"]["pair_accuracy"] == pytest.approx(np.mean(scores[:, 0] > scores[:, 1]))


def test_embedding_tables_read_together_must_share_their_backbone():
    from rlhf_core.config import load_config, task_config_path

    cfg = load_config(task_config_path("rlhflow"), ["datasets.reward_bench_embeddings.options.token_pattern=gemma2"])
    stage2 = ("model", "strip_bos_text", "token_pattern")
    rm_kinds.check_same_backbone(
        cfg.datasets, ["armorm_objective_embeddings", "armorm_pair_embeddings"], ("model", "strip_bos_text"), "armo"
    )  # one backbone, read one way
    tables = r"\['armorm_pair_embeddings', 'reward_bench_embeddings'\]"
    with pytest.raises(
        ValueError, match=f"reward_bench: datasets {tables} embed with different model / strip_bos_text / token_pattern"
    ):
        rm_kinds.check_same_backbone(
            cfg.datasets, ["armorm_pair_embeddings", "reward_bench_embeddings"], stage2, "reward_bench"
        )


def test_hh_pro_is_scored_by_the_pretrained_oasst_rm_on_the_seeds_input(tmp_path):
    # hh_pro trains no RM: its data's rewards come from the released OASST pythia RM, which also
    # scores its generations (sigmoid of the logit). A tiny random GPT-NeoX stands in for it.
    import torch
    from transformers import AutoTokenizer, GPTNeoXForSequenceClassification

    from rlhf_core.rewards.combine import RewardFunction, terms
    from tests.tiny_models import neox_classifier

    neox = neox_classifier(tmp_path / "neox")
    cfg = load_task("hh_pro", [*header_overrides("hh_pro")[0], f"annotation.scorers.reward.params.model={neox}"])
    assert not cfg.reward_models
    rows = build_task(cfg, only={"hh_pairs"})["hh_pairs"].kept
    row = rows[rows["chosen"] == "Put it in boiling water for 8 minutes."].iloc[0]
    spec = cfg.annotation.scorers["reward"]
    scorer = build_scorer(spec.scorer, **spec.params, progress=False)
    (score,) = scorer([row["prompt"]], [row["chosen"]])
    # docs/sources.md §3.2: every element of the prefix, the response included, followed by EOS
    text = (
        "<|prompter|>How do I boil an egg?<|endoftext|><|assistant|>Put it in boiling water for 8 minutes.<|endoftext|>"
    )
    tok, model = AutoTokenizer.from_pretrained(neox), GPTNeoXForSequenceClassification.from_pretrained(neox)
    with torch.no_grad():
        expected = model(**tok(text, return_tensors="pt")).logits[0, 0].item()
    assert score == pytest.approx(expected, rel=1e-5)
    (reward,) = RewardFunction({"reward": scorer}, terms(cfg.annotation.scorers))([row["prompt"]], [row["chosen"]])
    assert reward == pytest.approx(1 / (1 + math.exp(-expected)), rel=1e-5)
