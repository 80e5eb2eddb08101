"""Pairwise judging: verdict parsing, both orders, win rates and agreement against hand-worked values."""

import math

import numpy as np
import pandas as pd
import pytest

from rlhf_core.eval.judge import PROMPTS, ScoreJudge, agreement, compare, paired_rows, win_rates
from rlhf_core.stages.judge import Endpoint, comparisons


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Response B is clearer.\nMore helpful: B\nMore safe: equal", {"helpful": "second", "safe": "tie"}),
        (' A answers it. \nMore helpful: "A" \nMore safe: "neither"', {"helpful": "first", "safe": "tie"}),
        ("More helpful: a\nmore safe: B", {"helpful": "first", "safe": "second"}),
        ("I cannot decide. More helpful: maybe", {"helpful": None, "safe": None}),
        ("xq7 ~~ Bz", {"helpful": None, "safe": None}),
    ],
)
def test_lol_verdicts_are_read_per_criterion_and_garbage_is_unparseable(reply, expected):
    assert PROMPTS["lol_hha"].parse(reply) == expected


@pytest.mark.parametrize(
    "reply, expected",
    [("m", "first"), ("M\n", "second"), (" m ", "first"), ("mM", None), ("Model m", None), ("", None)],
)
def test_alpaca_eval_verdict_is_exactly_one_identifier(reply, expected):
    assert PROMPTS["alpaca_eval"].parse(reply) == {"preferred": expected}


def test_prompts_show_the_pair_in_the_order_asked():
    lol = PROMPTS["lol_hha"].render("Human: hi", "first reply", "second reply")[0]["content"]
    asked = lol.split("####################")[1]
    assert asked.index("Response A: first reply") < asked.index("Response B: second reply")
    assert asked.rstrip().endswith("Comparison:")
    alpaca = PROMPTS["alpaca_eval"].render("say hi", "one", "two")[1]["content"]
    assert alpaca.index('"m"') < alpaca.index('"one"') < alpaca.index('"M"') < alpaca.index('"two"')


class PositionBiased:
    """A judge that answers from a script per (first, second) shown: for the order tests."""

    criteria = ("preferred",)

    def __init__(self, script: dict[tuple[str, str], str | None]):
        self.script = script

    def verdicts(self, items):
        out = [{"preferred": self.script[(a, b)]} for _, a, b in items]
        return out, [str(o) for o in out]


def test_both_orders_are_asked_and_turned_into_the_models_outcome():
    # prompt 0: the judge always picks whatever is shown first -> one win and one loss for the model;
    # prompt 1: picks the model both times; prompt 2: a tie, then an unparseable reply.
    judge = PositionBiased(
        {
            ("m0", "b0"): "first",
            ("b0", "m0"): "first",
            ("m1", "b1"): "first",
            ("b1", "m1"): "second",
            ("m2", "b2"): "tie",
            ("b2", "m2"): None,
        }
    )
    out = compare(judge, ["p0", "p1", "p2"], ["m0", "m1", "m2"], ["b0", "b1", "b2"])
    assert out["order"].tolist() == ["model_first"] * 3 + ["model_second"] * 3
    assert out["preferred"].fillna("unparsed").tolist() == ["win", "win", "tie", "loss", "win", "unparsed"]
    rates = win_rates(out, "preferred")
    # per prompt (w, t, l): p0 (1/2, 0, 1/2), p1 (1, 0, 0), p2 (0, 1, 0) from its one parsed verdict
    assert rates["win_rate"] == pytest.approx(0.5) and rates["tie_rate"] == pytest.approx(1 / 3)
    assert rates["loss_rate"] == pytest.approx(1 / 6)
    assert rates["win_se"] == pytest.approx(np.std([0.5, 1, 0], ddof=1) / math.sqrt(3))
    assert rates["score"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert rates["unparseable_share"] == pytest.approx(1 / 6) and rates["pairs_judged"] == 3


def test_a_score_judge_prefers_the_higher_score_in_either_order():
    judge = ScoreJudge(lambda prompts, texts: [len(t) for t in texts], "length")
    out = compare(judge, ["p", "q"], ["long answer", "a"], ["short", "a"])
    assert out["score"].tolist() == ["win", "tie", "win", "tie"]
    rates = win_rates(out, "score")
    assert (rates["win_rate"], rates["tie_rate"], rates["loss_rate"]) == (0.5, 0.5, 0.0)
    assert rates["unparseable_share"] == 0.0


def test_agreement_counts_prompts_where_both_decide_per_source():
    out = pd.DataFrame(
        {"pair": [0, 1, 2, 3, 0, 1, 2, 3], "x": ["win", "loss", "tie", "win", "win", "tie", "tie", None]}
    )
    # judge per prompt: +1, -1, 0, +1; scorer: +1, +1, -1, 0 -> prompt 0 agrees, 1 disagrees, 2 and 3 undecided
    got = agreement(
        out,
        "x",
        np.array([2.0, 2.0, 0.0, 1.0]),
        np.array([1.0, 1.0, 1.0, 1.0]),
        np.array(["oasst", "koala", "oasst", "koala"]),
    ).set_index("source")
    assert got.loc["oasst", "agreement"] == 1.0 and got.loc["oasst", "undecided"] == 1
    assert got.loc["koala", "agreement"] == 0.0 and got.loc["koala", "prompts"] == 1


def evaluation_table(samples: list[str], reference: str) -> pd.DataFrame:
    """One prompt's evaluation rows as the evaluation stage writes them: its k samples, then the reference."""
    gen = [{"sample": k, "completion": c, "segment": "gen"} for k, c in enumerate(samples)]
    gold = [{"sample": 0, "completion": reference, "segment": "gold"}]
    return pd.DataFrame([{"id": "p1", "prompt": "Say hi.", "split": "test", **row} for row in gen + gold])


def test_with_k_samples_sample_i_meets_the_baselines_sample_i_once():
    # Two samples each; the longer response wins. Sample 0: "hello there" beats "hey", sample 1: "hi" loses to
    # "hello you": one win and one loss, win rate 1/2 over 2 pairs. Pairing every model sample with every
    # baseline sample (and with the references) would judge 6 pairs: 4 of them wins.
    model = evaluation_table(["hello there", "hi"], "a reference")
    baseline = evaluation_table(["hey", "hello you"], "a reference")
    rows = paired_rows(model, baseline)
    assert rows[["completion", "completion_baseline"]].values.tolist() == [["hello there", "hey"], ["hi", "hello you"]]
    judge = ScoreJudge(lambda prompts, completions: [len(c) for c in completions], "length")
    rates = win_rates(
        compare(judge, rows["prompt"].tolist(), rows["completion"].tolist(), rows["completion_baseline"].tolist()),
        "score",
    )
    assert (rates["pairs"], rates["win_rate"], rates["loss_rate"]) == (2, 0.5, 0.5)


def test_each_policy_is_compared_with_the_baseline_of_its_own_seed_and_never_on_val():
    keys = ["sft@seed=1", "sft@seed=2", "dpo@seed=1", "dpo@seed=2", "dpo@lr=0.1@seed=1@split=val"]
    assert comparisons(keys, "sft", [["dpo@seed=1", "dpo@seed=2"]]) == [
        ("dpo@seed=1", "sft@seed=1"),
        ("dpo@seed=2", "sft@seed=2"),
        ("dpo@seed=1", "dpo@seed=2"),
    ]
    with pytest.raises(ValueError, match="ppo"):
        comparisons(keys, "sft", [["ppo", "sft"]])


def test_the_api_key_never_shows_in_an_endpoint_repr():
    assert "sk-secret" not in repr(Endpoint("http://127.0.0.1:1/v1", "judge", "sk-secret"))
