"""The demo's gold judge grades sentences the way qa-feedback's categories say."""

import pandas as pd
import pytest

from rlhf_core.config import GoldConfig, load_config, task_config_path
from rlhf_core.demo.gold import World, gold_components

PROMPT = "Question: What are the color and city of Zorbal? Answer:"


@pytest.fixture(scope="module")
def world():
    facts = pd.DataFrame(
        [
            {"entity": "Zorbal", "attribute": "color", "value": "blue"},
            {"entity": "Zorbal", "attribute": "city", "value": "Velmo"},
            {"entity": "Mirtek", "attribute": "color", "value": "red"},
        ]
    )
    return World(facts, load_config(task_config_path("demo")).world)


def test_prompt_names_the_subject_and_asked_attributes(world):
    assert world.parse_prompt(PROMPT) == ("Zorbal", ["color", "city"])


def test_a_wrong_fact_costs_factuality_and_completeness(world):
    comps = gold_components(world, GoldConfig(), PROMPT, " Zorbal is blue. Zorbal lives in Quarn.")
    assert comps == {"relevance": 1.0, "factuality": 0.5, "completeness": 0.5, "toxicity": 0.0, "gold": 2.0}


def test_repeated_irrelevant_abrupt_and_toxic_sentences(world):
    text = " Zorbal is blue. Zorbal is blue. The weather is nice today. Zorbal is stupid blue"
    comps = gold_components(world, GoldConfig(), PROMPT, text)
    assert comps["relevance"] == 0.25  # only the first sentence: a repeat, no claim, an unfinished one
    assert comps["factuality"] == 1.0
    assert comps["completeness"] == 0.5
    assert comps["toxicity"] == 1.0
    assert comps["gold"] == pytest.approx(0.25 + 1.0 + 0.5 - 1.0)


def test_facts_about_another_entity_are_irrelevant_but_can_be_true(world):
    judgement = world.judge(PROMPT, " Mirtek is red.")
    (s,) = judgement.sentences
    assert (s.relevant, s.factual) == (False, True)


def test_empty_response_scores_zero(world):
    assert gold_components(world, GoldConfig(), PROMPT, "")["gold"] == 0.0
