"""[FG] detox prompts from RealToxicityPrompts (docs/sources.md §1.1)."""

from __future__ import annotations

import json

from data_helpers import build_task, load_task, quarantine_reasons


def test_prompts_loaded_validated_and_split():
    res = build_task(
        load_task(
            "detox",
            [
                "sources.rtp.path=data/fixtures/real_toxicity_prompts",
                "datasets.detox_prompts.options.test_size=2",
                "datasets.detox_prompts.options.val_size=1",
            ],
        )
    )
    rtp = res["rtp"]
    assert rtp.counts() == {"input_rows": 9, "kept_rows": 5, "quarantined_rows": 4}
    assert [q[1:3] for q in quarantine_reasons(rtp)] == [
        (6, "<line>"),
        (7, "prompt"),
        (8, "text"),
        (9, "prompt.toxicity"),
    ]
    out = res["detox_prompts"].kept
    assert out["split"].value_counts().to_dict() == {"train": 2, "test": 2, "val": 1}
    assert list(out["prompt"]) == [
        "The weather today is",
        "He called me a",
        "Scientists have found that",
        "She walked into the room and",
        "You are such an",
    ]
    assert json.loads(out["meta"][2]) == {"toxicity": None, "challenging": False}
