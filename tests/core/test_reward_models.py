"""Every reward-model kind of the demo trains on a few demo rows, is judged, and scores through the registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.data.loaders import demo
from rlhf_core.models.load import build_causal_lm, save_model, train_tokenizer
from rlhf_core.rewards.base import build_scorer
from rlhf_core.stages import reward_models, rm_eval
from rlhf_core.store import ArtifactStore, write_table

NAMES = ["bt", "holistic", "ranking", "absolute", "relevance", "factuality", "pair_pm", "armo"]
MICRO = [
    "world.n_prompts={train: 24, val: 4, test: 8}",
    "world.malformed_rows=0",
    "sft.model.init={n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}",
    *(f"reward_models.{n}.train.epochs=1" for n in NAMES),
]


def _ref(store: ArtifactStore, name: str, write):
    def build(out, _):
        write(out)
        return {}

    return store.build("demo", name, None, {"name": name}, build)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task = load_config(task_config_path("demo"), MICRO)
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    clean = demo.clean_feedback(
        {"raw": demo.load_feedback(None, task).kept}, task.datasets["clean_feedback"], task
    ).kept
    builders = {
        "preference_pairs": demo.preference_pairs,
        "absolute_ratings": demo.absolute_ratings,
        "rankings": demo.rankings,
        "fine_grained_labels": demo.fine_grained_labels,
        "offline_data": demo.responses,
    }
    tables = {name: task.datasets[name] for name in builders}
    data = {}
    for name, spec in tables.items():
        rows = builders[name]({"clean": clean}, spec, task).kept
        data[name] = _ref(store, name, lambda out, rows=rows: write_table(rows, out / "table.parquet"))
    tok = train_tokenizer(clean["prompt"].tolist() + [r for rs in clean["responses"] for r in rs], 300, 2)
    tok_ref = _ref(store, "tokenizer", tok.save_pretrained)
    sft_ref = _ref(store, "sft_model", lambda out: save_model(build_causal_lm(task.sft.model.init, tok, 0), tok, out))
    world = demo.load_world(None, task).kept
    world_ref = _ref(store, "raw_world", lambda out: write_table(world, out / "table.parquet"))
    refs = {}
    for name in NAMES:
        spec = task.reward_models[name]
        inputs = {d: data[d] for d in reward_models.rm_datasets(spec)}
        refs[name], _ = reward_models.reward_model(
            task, store, name, tok_ref, sft_ref, inputs, world_ref if reward_models.needs_gold(task, name) else None
        )
    return task, store, data, refs, clean


def test_every_kind_saves_a_model_with_its_spec_and_scores_through_the_registry(trained):
    task, _, _, refs, clean = trained
    prompts = clean["prompt"].tolist()[:5]
    responses = [rs[1] for rs in clean["responses"]][:5]
    others = [rs[2] for rs in clean["responses"]][:5]
    for name in NAMES:
        spec = json.loads((refs[name].dir / "reward_model.json").read_text())
        assert spec["kind"] == task.reward_models[name].kind
        scorer = build_scorer("reward_model", model=refs[name].path, progress=False)
        if spec["kind"] == "pairwise_preference":  # P(first preferred), both orders averaged: p(a, b) = 1 - p(b, a)
            p, q = scorer.preference(prompts, responses, others), scorer.preference(prompts, others, responses)
            assert np.allclose(np.asarray(p) + np.asarray(q), 1.0, atol=1e-5)
            with pytest.raises(TypeError, match="scores pairs"):
                scorer(prompts, responses)
            continue
        scores = scorer(prompts, responses)
        assert len(scores) == 5 and all(math.isfinite(s) for s in scores), name


def test_fg_token_artifact_records_label_type_segmentation_and_error_label(trained):
    _, _, _, refs, _ = trained
    from transformers import AutoModelForTokenClassification

    for name, unit, error in (("relevance", "subsentence", "NF-ERR"), ("factuality", "sentence", "F-ERR")):
        spec = json.loads((refs[name].dir / "reward_model.json").read_text())
        assert spec["label_type"] == name and spec["segmentation"] == unit
        assert spec["id2label"][spec["error_label_id"]] == error and spec["id2label"][spec["no_error_label_id"]] == "O"
        model = AutoModelForTokenClassification.from_pretrained(refs[name].path)
        assert model.config.num_labels == 3 and model.config.id2label[spec["error_label_id"]] == error


def test_fg_token_score_is_the_sum_of_segment_rewards(trained):
    _, _, _, refs, clean = trained
    scorer = build_scorer("reward_model", model=refs["factuality"].path)
    prompts, responses = clean["prompt"].tolist()[:4], [rs[0] for rs in clean["responses"]][:4]
    errors = scorer.segment_errors(prompts, responses)
    assert [len(e) for e in errors] == [len(reward_models_segments(r)) for r in responses]
    assert scorer(prompts, responses) == [sum(-1.0 if e else 1.0 for e in errs) for errs in errors]


def test_fg_token_dense_rewards_land_where_its_segments_end(trained):
    from rlhf_core.data.segmentation import reward_segments
    from rlhf_core.train.rm_token import segments_of

    _, _, _, refs, clean = trained
    scorer = build_scorer("reward_model", model=refs["relevance"].path)
    prompts, responses = clean["prompt"].tolist()[:6], [rs[2] for rs in clean["responses"]][:6]
    errors = scorer.segment_errors(prompts, responses)
    for text, errs, dense in zip(responses, errors, scorer.segment_rewards(prompts, responses)):
        segments = reward_segments(text, "subsentence")
        # the segments the RM labels are the ones whose ends the rewards go to, in order
        assert [" ".join(t.split()) for t, _ in segments] == segments_of(text, "subsentence")
        assert dense == [(end, -1.0 if e else 1.0) for (_, end), e in zip(segments, errs)]


def test_fg_token_tie_between_error_and_no_error_logits_is_an_error():
    # [FG] takes a 2-way argmax whose first entry is the error label: a tie counts as an error.
    import torch
    from transformers import GPT2Config, GPT2ForTokenClassification

    from rlhf_core.train.rm_token import segment_errors

    tok = train_tokenizer(["Zorbal is red. It eats figs. Question: what?"] * 4, 300, 1)
    model = GPT2ForTokenClassification(
        GPT2Config(
            vocab_size=len(tok),
            n_positions=64,
            n_embd=16,
            n_layer=1,
            n_head=2,
            num_labels=3,
            pad_token_id=tok.pad_token_id,
        )
    )
    with torch.no_grad():  # every output 0 at every position: error and no-error logits tie
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
    spec = {
        "error_label_id": 1,
        "no_error_label_id": 2,
        "segmentation": "sentence",
        "marker": "after",
        "max_length": 64,
    }
    assert segment_errors(model.eval(), tok, spec, ["Question: what?"], ["Zorbal is red. It eats figs."]) == [
        [True, True]
    ]
    with torch.no_grad():
        model.classifier.bias[2] = 1e-3  # no-error now wins by a hair
    assert segment_errors(model, tok, spec, ["Question: what?"], ["Zorbal is red. It eats figs."]) == [[False, False]]


def reward_models_segments(text: str) -> list[str]:
    from rlhf_core.train.rm_token import segments_of

    return segments_of(text, "sentence")


def test_each_kind_reports_its_seed_metric_on_held_out_rows(trained):
    task, store, data, refs, _ = trained
    expected = {
        "bradley_terry": "pair_accuracy",
        "fg_sequence_preference": "pair_accuracy",
        "crs_ranking": "accuracy",
        "crs_absolute": "mse_low",
        "fg_token": "all_no_error_accuracy",
        "pairwise_preference": "pair_accuracy",
        "armo": "pair_accuracy",
    }
    for name in NAMES:
        spec = task.reward_models[name]
        inputs = {d: data[d] for d in reward_models.rm_datasets(spec)}
        _, meta = rm_eval.reward_model_eval(task, store, name, refs[name], inputs, None)
        value = meta["heldout"][expected[spec.kind]]
        assert 0.0 <= value <= 1.0 or (spec.kind == "crs_absolute" and value >= 0.0), (name, meta["heldout"])
        assert meta["summary"]["heldout_value"] == meta["heldout"][meta["summary"]["heldout_metric"]]
        if spec.kind == "armo":  # the demo's objectives are gold components: its weights against gold's
            per = meta["gating_vs_gold"].set_index("objective")
            assert per["gold_weight"].to_dict() == {
                "relevance": 1.0,
                "factuality": 1.0,
                "completeness": 1.0,
                "toxicity": -1.0,
            }
            scale = float(build_scorer("reward_model", model=refs[name].path).armo.gating.logit_scale.detach())
            assert per["gating_mean"].sum() == pytest.approx(scale, rel=1e-5)  # softmax times logit_scale
            assert np.allclose(per["coefficient"], per["gating_mean"])  # no verbosity objective: T = I
            assert -1.0 <= meta["summary"]["gating_gold_cosine"] <= 1.0


def test_gold_metrics_compare_scores_with_gold_within_each_prompt():
    probe = pd.DataFrame(
        {
            "source": ["logged"] * 3 + ["sampled"] * 2,
            "prompt": ["p", "p", "q", "p", "p"],
            "completion": ["a", "b", "c", "d", "e"],
            "gold": [1.0, 0.0, 5.0, 2.0, 3.0],
        }
    )
    scores = {"a": 2.0, "b": 1.0, "c": -9.0, "d": 5.0, "e": 4.0}
    out = rm_eval.gold_metrics(lambda p, c: [scores[x] for x in c], "bradley_terry", probe)
    # logged: one pair (a, b), ordered as gold; sampled: one pair (d, e), ordered against gold
    assert out["gold_pair_acc_logged"] == 1.0 and out["gold_pair_acc_sampled"] == 0.0
    # score ranks (3, 2, 1) vs gold ranks (2, 1, 3): d = (1, 1, -2), rho = 1 - 6 * 6 / (3 * 8) = -0.5
    assert out["gold_spearman_logged"] == pytest.approx(-0.5)


def test_reward_bench_section_scores_match_a_hand_computation(trained):
    import dataclasses

    from rlhf_core.config import RewardBenchConfig
    from rlhf_core.stages import reward_bench

    task, store, data, refs, _ = trained
    pairs = pd.read_parquet(data["preference_pairs"].file("table.parquet")).head(7)
    pairs = pairs.assign(subset=["alpacaeval-easy"] * 3 + ["mt-bench-easy"] * 2 + ["llmbar-natural"] * 2)
    bench_ref = _ref(store, "bench", lambda out: write_table(pairs, out / "table.parquet"))
    task = dataclasses.replace(task, reward_bench=RewardBenchConfig(data="bench", models=["bt", "pair_pm"]))
    ref, _ = reward_bench.reward_bench(task, store, refs, bench_ref)
    board = pd.read_parquet(ref.file("table.parquet")).set_index("model")

    prompts, chosen, rejected = (pairs[c].tolist() for c in ("prompt", "chosen", "rejected"))
    bt = build_scorer("reward_model", model=refs["bt"].path, progress=False)
    sc, sr = bt(prompts, chosen), bt(prompts, rejected)
    right = [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(sc, sr)]
    # Chat: alpacaeval-easy weighs 100, mt-bench-easy 28; Chat Hard: llmbar-natural alone.
    easy, mt, llmbar = sum(right[:3]) / 3, sum(right[3:5]) / 2, sum(right[5:]) / 2
    assert board.loc["bt", "Chat"] == pytest.approx(100 * (easy * 100 + mt * 28) / 128)
    assert board.loc["bt", "Chat Hard"] == pytest.approx(100 * llmbar)
    assert math.isnan(board.loc["bt", "overall"])  # Safety and Reasoning are not scored here

    pm = build_scorer("reward_model", model=refs["pair_pm"].path).preference(prompts, chosen, rejected)
    right = [1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0 for p in pm]
    easy, mt = sum(right[:3]) / 3, sum(right[3:5]) / 2
    assert board.loc["pair_pm", "Chat"] == pytest.approx(100 * (easy * 100 + mt * 28) / 128)
