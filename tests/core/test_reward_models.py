"""Every reward-model kind of the demo trains on a few demo rows, is judged, and scores through the registry."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.data.loaders import demo
from rlhf_core.models.load import build_causal_lm, save_model, train_tokenizer
from rlhf_core.rewards.base import build_scorer
from rlhf_core.stages import reward_models, rm_eval
from rlhf_core.store import ArtifactStore, write_table

NAMES = ["bt", "holistic", "ranking", "absolute", "relevance", "factuality"]
MICRO = ["world.n_prompts={train: 24, val: 4, test: 8}", "world.malformed_rows=0",
         "sft.model.init={n_layer: 1, n_head: 2, n_embd: 32, n_positions: 128}",
         *(f"reward_models.{n}.train.epochs=1" for n in NAMES)]


def _ref(store: ArtifactStore, name: str, write):
    def build(out, _):
        write(out)
        return {}

    return store.build("demo", name, None, {"name": name}, build)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task = load_config(task_config_path("demo"), MICRO)
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    clean = demo.clean_feedback({"raw": demo.load_feedback(None, task).kept}, task.datasets["clean_feedback"], task).kept
    tables = {name: task.datasets[name] for name in ("preference_pairs", "absolute_ratings", "rankings",
                                                      "fine_grained_labels")}
    builders = {"preference_pairs": demo.preference_pairs, "absolute_ratings": demo.absolute_ratings,
                "rankings": demo.rankings, "fine_grained_labels": demo.fine_grained_labels}
    data = {}
    for name, spec in tables.items():
        rows = builders[name]({"clean": clean}, spec, task).kept
        data[name] = _ref(store, name, lambda out, rows=rows: write_table(rows, out / "table.parquet"))
    tok = train_tokenizer(clean["prompt"].tolist() + [r for rs in clean["responses"] for r in rs], 300, 2)
    tok_ref = _ref(store, "tokenizer", tok.save_pretrained)
    sft_ref = _ref(store, "sft_model", lambda out: save_model(build_causal_lm(task.sft.model.init, tok, 0), tok, out))
    refs = {}
    for name in NAMES:
        spec = task.reward_models[name]
        refs[name], _ = reward_models.reward_model(task, store, name, tok_ref, sft_ref, {spec.data: data[spec.data]},
                                                   None)
    return task, store, data, refs, clean


def test_every_kind_saves_a_model_with_its_spec_and_scores_through_the_registry(trained):
    task, _, _, refs, clean = trained
    prompts = clean["prompt"].tolist()[:5]
    responses = [rs[1] for rs in clean["responses"]][:5]
    for name in NAMES:
        spec = json.loads((refs[name].dir / "reward_model.json").read_text())
        assert spec["kind"] == task.reward_models[name].kind
        scores = build_scorer("reward_model", model=refs[name].path, progress=False)(prompts, responses)
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


def reward_models_segments(text: str) -> list[str]:
    from rlhf_core.train.rm_token import segments_of

    return segments_of(text, "sentence")


def test_each_kind_reports_its_seed_metric_on_held_out_rows(trained):
    task, store, data, refs, _ = trained
    expected = {"bradley_terry": "pair_accuracy", "fg_sequence_preference": "pair_accuracy", "crs_ranking": "accuracy",
                "crs_absolute": "mse_low", "fg_token": "all_no_error_accuracy"}
    for name in NAMES:
        spec = task.reward_models[name]
        _, meta = rm_eval.reward_model_eval(task, store, name, refs[name], data[spec.data], None)
        value = meta["heldout"][expected[spec.kind]]
        assert 0.0 <= value <= 1.0 or (spec.kind == "crs_absolute" and value >= 0.0), (name, meta["heldout"])
        assert meta["summary"]["heldout_value"] == meta["heldout"][meta["summary"]["heldout_metric"]]


def test_gold_metrics_compare_scores_with_gold_within_each_prompt():
    probe = pd.DataFrame({"source": ["logged"] * 3 + ["sampled"] * 2, "prompt": ["p", "p", "q", "p", "p"],
                          "completion": ["a", "b", "c", "d", "e"], "gold": [1.0, 0.0, 5.0, 2.0, 3.0]})
    scores = {"a": 2.0, "b": 1.0, "c": -9.0, "d": 5.0, "e": 4.0}
    out = rm_eval.gold_metrics(lambda p, c: [scores[x] for x in c], "bradley_terry", probe)
    # logged: one pair (a, b), ordered as gold; sampled: one pair (d, e), ordered against gold
    assert out["gold_pair_acc_logged"] == 1.0 and out["gold_pair_acc_sampled"] == 0.0
    # score ranks (3, 2, 1) vs gold ranks (2, 1, 3): d = (1, 1, -2), rho = 1 - 6 * 6 / (3 * 8) = -0.5
    assert out["gold_spearman_logged"] == pytest.approx(-0.5)
