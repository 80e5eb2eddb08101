"""[RF] standard-format pairs -> pair-PM rows; ArmoRM multi-objective rows (SPEC 1.5, 2.4, 2.5)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from data_helpers import build_task, load_task, quarantine_reasons
from rlhf_core.config import SourceConfig
from rlhf_core.data.registry import get_loader

ROOT = "data/fixtures/rlhflow"
PARQUET = "data/train-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def res():
    return build_task(load_task("rlhflow", [
        f"sources.ultrafeedback.path={ROOT}/UltraFeedback-preference-standard",
        f"sources.hh_helpful.path={ROOT}/HH-RLHF-Helpful-standard",
        f"sources.shp.path={ROOT}/SHP-standard",
        f"sources.armorm.path={ROOT}/ArmoRM-Multi-Objective-Data-v0.1",
    ]))  # fmt: skip


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
        "input_rows": 9, "kept_rows": 4, "quarantined_rows": 0, "dropped_context_mismatch": 1,
        "dropped_empty_content": 1, "dropped_not_alternating": 1, "dropped_odd_length": 1, "dropped_unequal_length": 1,
    }  # fmt: skip
    rows = pm.kept.set_index("id")
    assert set(rows.index) == {
        "RLHFlow/UltraFeedback-preference-standard-1", "RLHFlow/UltraFeedback-preference-standard-2",
        "RLHFlow/HH-RLHF-Helpful-standard-1", "RLHFlow/SHP-standard-1",
    }  # fmt: skip
    row = rows.loc["RLHFlow/UltraFeedback-preference-standard-2"]
    context = "\n\n\n<turn> user\n Hi\n\n<turn> assistant\n Hello!\n\n<turn> user\n Name a colour.\n\n\n"
    first, second = ("Blue.", "Seven.") if row.completion == "A" else ("Seven.", "Blue.")
    assert row.prompt == f"[CONTEXT] {context} [RESPONSE A] {first} [RESPONSE B] {second} \n"
    # the chosen answer is always the one the label points at
    for r in rows.itertuples():
        chosen = {"A": r.prompt.split("[RESPONSE A] ")[1].split(" [RESPONSE B]")[0],
                  "B": r.prompt.split("[RESPONSE B] ")[1][:-2]}[r.completion]  # fmt: skip
        assert chosen in {"4", "Blue.", "Cross, loop, pull through.", "Basil."}
    again = build_task(load_task("rlhflow", [
        f"sources.ultrafeedback.path={ROOT}/UltraFeedback-preference-standard",
        f"sources.hh_helpful.path={ROOT}/HH-RLHF-Helpful-standard", f"sources.shp.path={ROOT}/SHP-standard",
    ]), only={"pair_pm"})["pair_pm"]  # fmt: skip
    pd.testing.assert_frame_equal(again.kept, pm.kept)  # seeded positions and shuffle


def test_armorm_attributes_keep_nan(res):
    arm = res["armorm"]
    assert arm.counts() == {"input_rows": 4, "kept_rows": 3, "quarantined_rows": 1}
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
