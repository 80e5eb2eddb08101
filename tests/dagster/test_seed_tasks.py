"""Every seed task's data group materializes offline from the shipped fixtures, through Dagster.

The overrides are parsed from each task YAML's header comment (the documented
``rlhf run <task> --select data --set ...`` command), so the docs and this test cannot drift.
"""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.runner import resolve_selection, run_task
from pipelines.task_defs import run_plan
from resources import build_resources
from rlhf_core.config import load_config, task_config_path
from tests.dagster.documented import COMMANDS, REPO

SEED_TASKS = ["hh_rlhf", "hh_pro", "oasst_crs", "qa_feedback", "detox", "comet", "reddit", "faithdial", "rlhflow"]


def header_overrides(task: str) -> tuple[list[str], list[str]]:
    """(``--set`` values, ``--select`` values) of the ``rlhf run <task>`` command of the YAML header."""
    header = f"{task_config_path(task).relative_to(REPO)}:"
    argv = next(argv for where, argv in COMMANDS if where.startswith(header) and argv[:2] == ["run", task])
    overrides, select = [], []
    it = iter(argv[2:])
    for flag in it:
        assert flag in ("--set", "--select"), f"{task}: unexpected header argument {flag!r}"
        (overrides if flag == "--set" else select).append(next(it))
    return overrides, select


@pytest.mark.parametrize("task", SEED_TASKS)
def test_header_command_materializes_the_data_group(task, tmp_path, monkeypatch):
    overrides, select = header_overrides(task)
    assert select == ["data"]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert run_task(task, overrides, ["data"], resources=build_resources(str(tmp_path / "art"))) == 0

    cfg = load_config(task_config_path(task), overrides)
    keys = resolve_selection(task, run_plan(cfg), ["data"])
    names = {k.path[-1] for k in keys}
    assert set(cfg.datasets) <= names, f"{task}: datasets outside the data group"
    inst = dg.DagsterInstance.get()
    for key in sorted(keys, key=str):
        event = inst.get_latest_materialization_event(key)
        assert event is not None, f"{key} was not materialized"
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        # every raw source table and every final dataset (the RM / policy files) keeps rows
        assert meta.get("kept_rows", 0) > 0, f"{key}: {meta}"


# Each seed reward component pointed at a tiny random model of its real architecture.
TINY_SCORERS = {
    "reddit": {
        "fluency": "{model: %(roberta)s}",
        "depth": "{model: %(dialogrpt)s}",
        "updown": "{model: %(dialogrpt)s}",
        "safe": "{model: %(toxichat)s}",
    },
    "faithdial": {
        "fluency": "{model: %(roberta)s}",
        "faithdial": "{model: %(roberta)s}",
        "depth": "{model: %(dialogrpt)s, history_only: true}",
    },
}


@pytest.mark.parametrize("task", sorted(TINY_SCORERS))
def test_seed_annotation_scores_the_fixture_data_with_the_real_scorer_code(
    task, tmp_path, monkeypatch, roberta_classifier_dir, dialogrpt_dir, toxichat_dir
):
    dirs = {"roberta": roberta_classifier_dir, "dialogrpt": dialogrpt_dir, "toxichat": toxichat_dir}
    overrides, _ = header_overrides(task)
    overrides += [f"annotation.scorers.{name}.params={spec % dirs}" for name, spec in TINY_SCORERS[task].items()]
    overrides.append("annotation.shards=1")
    if task == "reddit":  # the fixture is smaller than the seed's 1,000-row val and test splits
        overrides += ["datasets.reddit_generation.options.val_size=1", "datasets.reddit_generation.options.test_size=1"]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert run_task(task, overrides, ["data", "annotation"], resources=build_resources(str(tmp_path / "art"))) == 0

    meta = (
        dg.DagsterInstance.get()
        .get_latest_materialization_event(dg.AssetKey([task, "rewards"]))
        .asset_materialization.metadata
    )
    components = set(load_config(task_config_path(task), overrides).annotation.scorers)
    assert meta["kept_rows"].value > 0
    assert set(meta["component_means"].value) == components
