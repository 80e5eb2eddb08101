"""Which asset checks block: a table built from people's labels is empty until someone labels."""

from assets.checks import for_asset, from_people
from rlhf_core.config import load_config, task_config_path


def test_tables_from_people_only_warn_when_empty_and_the_others_still_block():
    task = load_config(task_config_path("demo"), [], profile="human_feedback")
    # configs/profiles/human_feedback.yaml: the three RM files read the collection qa_human
    assert from_people(task) == {"human_rel_labels", "human_fact_labels", "human_pairs"}
    blocking = {n: {c.name: c.blocking for c in for_asset(task, n)} for n in ("human_pairs", "preference_pairs")}
    assert blocking["human_pairs"] == {"non_empty": False, "pairs_valid": True}
    assert blocking["preference_pairs"] == {"non_empty": True, "pairs_valid": True}
    assert from_people(load_config(task_config_path("demo"), [])) == set()  # the plain demo has no collection
