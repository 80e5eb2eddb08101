"""Tideman ranked pairs and Borda points against hand-worked examples (docs/sources.md §7.4)."""

import json

import pytest

from rlhf_core.feedback.human_study import Ballots, read_argilla, read_jsonl, score
from rlhf_core.feedback.ranking import (
    RankingError,
    borda_points,
    group_summary,
    model_scores,
    ranked_pairs,
)

# 9 ballots over A, B, C with a majority cycle A > B > C > A:
#   4 x A B C, 3 x B C A, 2 x C A B
# head to head: A over B 4 + 2 = 6 vs 3 (margin 3); B over C 4 + 3 = 7 vs 2 (margin 5);
#               C over A 3 + 2 = 5 vs 4 (margin 1)
# lock by margin: B > C (5), A > B (3); C > A (1) would close A > B > C > A: skipped.
# order: A (unbeaten), then B, then C. Borda counts (2 per first place, 1 per second) tie A and B at 10,
# so only the locked pairs separate them.
CYCLE = [["A", "B", "C"]] * 4 + [["B", "C", "A"]] * 3 + [["C", "A", "B"]] * 2


def test_ranked_pairs_breaks_a_cycle_at_its_weakest_margin():
    assert ranked_pairs(CYCLE) == ["A", "B", "C"]
    # weaken A > B below C > A: 2 x A B C, 3 x B C A, 2 x C A B
    # A over B 2 + 2 = 4 vs 3 (1); B over C 2 + 3 = 5 vs 2 (3); C over A 3 + 2 = 5 vs 2 (3)
    # lock B > C (3), C > A (3) (equal margins alphabetically: (B, C) before (C, A)); A > B closes the cycle
    assert ranked_pairs([["A", "B", "C"]] * 2 + [["B", "C", "A"]] * 3 + [["C", "A", "B"]] * 2) == ["B", "C", "A"]


def test_ranked_pairs_two_opposite_ballots_fall_back_to_alphabetical_order():
    # every margin is 0: (A, B), (A, C), (B, C) lock first (alphabetical), their reverses would close cycles
    assert ranked_pairs([["C", "B", "A"], ["A", "B", "C"]]) == ["A", "B", "C"]
    assert ranked_pairs([["b", "a", "c"], ["b", "c", "a"], ["a", "b", "c"]]) == [
        "b",
        "a",
        "c",
    ]


def test_ranked_pairs_rejects_ballots_of_other_candidates():
    with pytest.raises(RankingError, match="not ranked"):
        ranked_pairs([["A", "B", "C"], ["A", "B"]])
    with pytest.raises(RankingError, match="twice"):
        ranked_pairs([["A", "B", "C"], ["A", "A", "C"]])


def test_borda_points_and_model_scores():
    assert borda_points(["x", "y", "z"]) == pytest.approx({"x": 1.0, "y": 2 / 3, "z": 1 / 3})
    # two prompts: x first then last -> (1 + 1/3) / 2; y (2/3 + 1) / 2; z (1/3 + 2/3) / 2
    scores = model_scores([["x", "y", "z"], ["y", "z", "x"]])
    assert scores == pytest.approx({"x": 2 / 3, "y": 5 / 6, "z": 0.5})


def test_group_summary_reproduces_the_published_means_and_population_std():
    # [CRS]'s per-group scores and their reported means / population stds (docs/sources.md §7.4)
    groups = {
        "1": {"pref": 0.63, "abs": 0.73, "crs": 0.63},
        "2": {"pref": 0.48, "abs": 0.87, "crs": 0.65},
        "3": {"pref": 0.52, "abs": 0.78, "crs": 0.70},
    }
    out = group_summary(groups)
    assert [round(out[m]["mean"], 2) for m in ("pref", "abs", "crs")] == [
        0.54,
        0.79,
        0.66,
    ]
    assert [round(out[m]["std"], 2) for m in ("pref", "abs", "crs")] == [
        0.06,
        0.06,
        0.03,
    ]
    assert out["abs"]["std"] == pytest.approx(0.0579, abs=5e-4)  # reported 0.058 (not the sample std 0.071)
    assert out["pref"]["group:2"] == 0.48


def test_human_study_reads_both_layouts_and_quarantines_bad_ballots(tmp_path):
    keys = {
        "p1": {"0": "rank", "1": "abs", "2": "crs"},
        "p2": {"0": "crs", "1": "rank", "2": "abs"},
    }
    export = [
        [
            {
                "response-1": 2,
                "response-2": 1,
                "response-3": 3,
                "name": "ann1",
            },  # abs, rank, crs
            {
                "response-1": 1,
                "response-2": 2,
                "response-3": 3,
                "name": "ann2",
            },  # rank, abs, crs
            {"response-1": 3, "response-2": 1, "response-3": 2, "name": "ann3"},
        ],  # abs, crs, rank
        [
            {
                "response-1": 2,
                "response-2": 2,
                "response-3": 2,
                "name": "ann1",
            },  # a tie: quarantined
            {"response-1": 1, "response-2": 3, "response-3": 2, "name": "ann2"},
        ],  # crs, abs, rank
    ]
    (tmp_path / "run1.json").write_text(json.dumps(export))
    ballots = Ballots()
    read_argilla(tmp_path / "run1.json", keys, "run1", ballots)
    lines = [
        {
            "group": "run2",
            "prompt": "p1",
            "annotator": "u",
            "ranking": ["crs", "abs", "rank"],
        },
        {
            "group": "run2",
            "prompt": "p1",
            "annotator": "v",
            "ranking": ["crs", "crs", "rank"],
        },
    ]
    (tmp_path / "plain.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    read_jsonl(tmp_path / "plain.jsonl", ballots)
    result, board = score(ballots)
    table = result.kept
    # p1 of run1: abs over rank 2-1, abs over crs 3-0, rank over crs 2-1 -> abs, rank, crs
    merged = {(g, p): r for g, p, r in zip(table["group"], table["prompt"], table["ranking"])}
    assert merged == {
        ("run1", "p1"): ["abs", "rank", "crs"],
        ("run1", "p2"): ["crs", "abs", "rank"],
        ("run2", "p1"): ["crs", "abs", "rank"],
    }
    assert result.n_input == 8 and len(result.quarantined) == 3
    assert result.dropped == {"merged_into_the_prompt_ranking": 2}
    reasons = " | ".join(result.quarantined["reason"])
    assert "ann1" in reasons and "ranked twice" in reasons and "not a {prompt, annotator, ranking}" in reasons
    by_model = board.set_index("model")
    # run1: abs (1 + 2/3) / 2, crs (1/3 + 1) / 2, rank (2/3 + 1/3) / 2; run2: crs 1, abs 2/3, rank 1/3
    assert by_model.loc["abs", "group:run1"] == pytest.approx(5 / 6)
    assert by_model.loc["crs", "mean"] == pytest.approx((2 / 3 + 1) / 2)
    assert by_model.loc["rank", "std"] == pytest.approx(abs(0.5 - 1 / 3) / 2)


def test_the_human_rankings_stage_scores_the_fixture_study(tmp_path):
    from rlhf_core.config import load_config, task_config_path
    from rlhf_core.stages.feedback import human_rankings
    from rlhf_core.store import ArtifactStore, read_table

    study = (
        "human_rankings={path: data/fixtures/crs_human_study, format: argilla, keys_file: all_keys.json, groups: "
        "{run1: {file: original-user-study-ws-run-1.json, keys: run_num0}, "
        "run2: {file: original-user-study-ws-run-2.json, keys: run_num1}}}"
    )
    task = load_config(task_config_path("oasst_crs"), [study])
    ref, meta = human_rankings(task, ArtifactStore(tmp_path))
    # run1 fruit: ann1 abs>rank>crs, ann2 abs>crs>rank, ann3 rank>abs>crs -> abs 2-1 over rank, abs 3-0 over crs,
    #   rank 2-1 over crs: abs, rank, crs. run1 hello (keys crs, rank, abs): ann1 crs>abs>rank; ann2's all-2 tie
    #   quarantined. run2 colour (abs, crs, rank): abs>crs>rank. run2 count (rank, crs, abs): ann4 abs>crs>rank,
    #   ann5 crs>abs>rank -> abs vs crs 1-1, margin 0: alphabetical, abs first: abs, crs, rank.
    assert (
        meta["kept_rows"],
        meta["quarantined_rows"],
        meta["dropped_merged_into_the_prompt_ranking"],
    ) == (4, 1, 3)
    board = read_table(ref.file("board.parquet")).set_index("model")
    # run1: abs (1 + 2/3) / 2, crs (1/3 + 1) / 2, rank (2/3 + 1/3) / 2; run2: abs 1, crs 2/3, rank 1/3
    assert board.loc["abs", "group:run1"] == pytest.approx(5 / 6) and board.loc["abs", "group:run2"] == 1.0
    assert board.loc["crs", "mean"] == pytest.approx((2 / 3 + 2 / 3) / 2) and board.loc["crs", "std"] == 0.0
    assert board.loc["rank", "std"] == pytest.approx(abs(0.5 - 1 / 3) / 2)
    assert human_rankings(task, ArtifactStore(tmp_path))[0].cached  # the same files: the same artifact
