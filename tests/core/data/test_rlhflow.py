"""[RF] standard-format pairs -> pair-PM rows; ArmoRM multi-objective rows and embeddings;
RewardBench pairs (docs/sources.md §1.5, §2.4, §2.5, §7.5). The embedding datasets run the shipped tiny model
(its exact positions and states are tested in ``test_armo_embeddings``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from data_helpers import build_task, load_task, quarantine_reasons

from rlhf_core.config import SourceConfig
from rlhf_core.data.registry import get_loader
from rlhf_core.data.schemas import PREFERENCE, require_columns

ROOT = "data/fixtures/rlhflow"
PARQUET = "data/train-00000-of-00001.parquet"
TINY_MODEL = f"{ROOT}/tiny-llama3-rm"
TINY_PATTERN = "[4, 2, 7, 3, 6]"  # llama3's gating pattern in the tiny model's vocabulary


@pytest.fixture(scope="module")
def res():
    return build_task(
        load_task(
            "rlhflow",
            [
                f"sources.ultrafeedback.path={ROOT}/UltraFeedback-preference-standard",
                f"sources.hh_helpful.path={ROOT}/HH-RLHF-Helpful-standard",
                f"sources.shp.path={ROOT}/SHP-standard",
                f"sources.armorm.path={ROOT}/ArmoRM-Multi-Objective-Data-v0.1",
                f"sources.reward_bench.path={ROOT}/reward-bench",
                *[
                    f"datasets.{name}.options.model={{path: {TINY_MODEL}}}"
                    for name in ("armorm_objective_embeddings", "armorm_pair_embeddings", "reward_bench_embeddings")
                ],
                f"datasets.armorm_pair_embeddings.options.token_pattern={TINY_PATTERN}",
                f"datasets.reward_bench_embeddings.options.token_pattern={TINY_PATTERN}",
            ],
        )
    )


def test_pair_loader_quarantines_malformed_messages(res):
    uf = res["ultrafeedback"]
    assert uf.counts() == {"input_rows": 9, "kept_rows": 7, "quarantined_rows": 2}
    assert quarantine_reasons(uf) == [
        (PARQUET, 8, "chosen[0]", "expected {role: str, content: str}"),
        (PARQUET, 9, "chosen", "empty conversation"),
    ]


def test_pair_pm_filters_template_and_label(res):
    pm = res["pair_pm"]
    assert pm.counts() == {
        "input_rows": 9,
        "kept_rows": 4,
        "quarantined_rows": 0,
        "dropped_context_mismatch": 1,
        "dropped_empty_content": 1,
        "dropped_not_alternating": 1,
        "dropped_odd_length": 1,
        "dropped_unequal_length": 1,
    }
    rows = pm.kept.set_index("id")
    assert set(rows.index) == {
        "RLHFlow/UltraFeedback-preference-standard-1",
        "RLHFlow/UltraFeedback-preference-standard-2",
        "RLHFlow/HH-RLHF-Helpful-standard-1",
        "RLHFlow/SHP-standard-1",
    }
    row = rows.loc["RLHFlow/UltraFeedback-preference-standard-2"]
    context = "\n\n\n<turn> user\n Hi\n\n<turn> assistant\n Hello!\n\n<turn> user\n Name a colour.\n\n\n"
    first, second = ("Blue.", "Seven.") if row.completion == "A" else ("Seven.", "Blue.")
    assert row.prompt == f"[CONTEXT] {context} [RESPONSE A] {first} [RESPONSE B] {second} \n"
    # the chosen answer is always the one the label points at
    for r in rows.itertuples():
        chosen = {
            "A": r.prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0],
            "B": r.prompt.split("[RESPONSE B] ")[1][:-2],
        }[r.completion]
        assert chosen in {"4", "Blue.", "Cross, loop, pull through.", "Basil."}
    again = build_task(
        load_task(
            "rlhflow",
            [
                f"sources.ultrafeedback.path={ROOT}/UltraFeedback-preference-standard",
                f"sources.hh_helpful.path={ROOT}/HH-RLHF-Helpful-standard",
                f"sources.shp.path={ROOT}/SHP-standard",
            ],
        ),
        only={"pair_pm"},
    )["pair_pm"]
    pd.testing.assert_frame_equal(again.kept, pm.kept)  # seeded positions and shuffle


def test_bt_pairs_split_the_shared_context_from_the_two_answers(res):
    bt = res["bt_pairs"]
    # of the 9 pairs, two end in a user turn (odd / swapped roles), two have different contexts
    # (unequal length, other question) and one a blank chosen answer
    assert bt.counts() == {
        "input_rows": 9,
        "kept_rows": 4,
        "quarantined_rows": 0,
        "dropped_context_mismatch": 2,
        "dropped_no_final_answer": 2,
        "dropped_empty_answer": 1,
    }
    row = bt.kept.set_index("id").loc["RLHFlow/UltraFeedback-preference-standard-2"]
    assert json.loads(row.prompt) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a colour."},
    ]
    assert (row.chosen, row.rejected) == ("Blue.", "Seven.")
    kept = [f"RLHFlow/UltraFeedback-preference-standard-{i}" for i in (1, 2)] + [
        "RLHFlow/HH-RLHF-Helpful-standard-1",
        "RLHFlow/SHP-standard-1",
    ]  # input order
    assert list(bt.kept["id"]) == [kept[i] for i in np.random.default_rng(42).permutation(4)]  # shuffled, seed 42


def test_armorm_attributes_keep_nan(res):
    arm = res["armorm"]
    # 12 fully labelled rows follow (but for a few NaN) so that ArmoRM's stage-1 probes fit on the fixture
    assert arm.counts() == {"input_rows": 16, "kept_rows": 15, "quarantined_rows": 1}
    assert quarantine_reasons(arm) == [(PARQUET, 4, "messages[0]", "expected {role: str, content: str}")]
    first = arm.kept.iloc[0]
    assert (first["helpsteer-helpfulness"], first["helpsteer-verbosity"]) == (3.0, 1.0)
    assert math.isnan(first["code-readability"]) and len(arm.kept.columns) == 3 + 19


def test_armorm_non_numeric_attribute_quarantined(tmp_path):
    pd.DataFrame({"messages": [[{"role": "user", "content": "q"}]], "helpsteer-helpfulness": ["high"]}).to_parquet(
        tmp_path / "x.parquet"
    )
    src = SourceConfig(loader="armorm_multi_objective", path=str(tmp_path), files={"train": "x.parquet"})
    out = get_loader("armorm_multi_objective")(src, None)
    assert out.quarantined[["row", "field", "reason"]].values.tolist() == [
        [1, "helpsteer-helpfulness", "expected a number or NaN, got 'high'"]
    ]


def test_reward_bench_rows_sections_and_quarantine(res):
    rb = res["reward_bench"]
    assert rb.counts() == {"input_rows": 9, "kept_rows": 7, "quarantined_rows": 2}
    assert quarantine_reasons(rb) == [
        ("data/filtered-00000-of-00001.parquet", 8, "subset", "unknown subset 'anthropic_helpful'"),
        ("data/filtered-00000-of-00001.parquet", 9, "chosen", "expected a string, got float"),  # a null reads as NaN
    ]
    rows = rb.kept.set_index("id")
    assert list(rb.kept.columns) == ["id", "split", "prompt", "chosen", "rejected", "subset", "section"]
    require_columns(rb.kept, PREFERENCE, "reward_bench")  # a standard explicit-prompt pairs table
    assert set(rb.kept["split"]) == {"test"}
    assert rows["section"].to_dict() == {
        "1": "Chat",
        "2": "Chat Hard",
        "3": "Safety",
        "4": "Safety",
        "5": "Reasoning",
        "6": "Reasoning",
        "7": "Safety",
    }
    assert rows.loc["7", "rejected"] == ""  # an empty response is still scored
    assert rows.loc["6", "chosen"] == "def add(a, b):\n    return a + b"


def test_armorm_embeddings_on_the_fixtures(res):
    stage1 = res["armorm_objective_embeddings"]
    assert stage1.counts() == {"input_rows": 15, "kept_rows": 15, "quarantined_rows": 0}
    assert stage1.kept["embedding"].map(len).tolist() == [16] * 15  # the tiny model's hidden size
    assert len(stage1.kept.columns) == 3 + 19

    pairs = res["armorm_pair_embeddings"]
    # the stage-2 seed has no pair-PM filters; only the conversation that opens with an assistant
    # turn has no user turn closed before an assistant header
    assert pairs.counts() == {"input_rows": 7, "kept_rows": 6, "quarantined_rows": 1}
    assert pairs.quarantined[["row", "field", "reason"]].values.tolist() == [
        [5, "chosen", f"token pattern {TINY_PATTERN} not found"]
    ]
    assert pairs.kept["embedding"].map(lambda e: [len(v) for v in e]).tolist() == [[16, 16]] * 6

    rb = res["reward_bench_embeddings"]
    assert rb.counts() == {"input_rows": 7, "kept_rows": 7, "quarantined_rows": 0}
    assert list(rb.kept.columns) == ["id", "split", "subset", "section", "embedding", "prompt_embedding"]
