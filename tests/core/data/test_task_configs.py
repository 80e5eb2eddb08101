"""The seed-workflow task YAMLs load strictly and name only registered loaders and builders."""

from __future__ import annotations

import pytest
from data_helpers import load_task

from rlhf_core.data.registry import get_builder, get_loader

TASKS = ["hh_rlhf", "hh_pro", "oasst_crs", "qa_feedback", "detox", "comet", "reddit", "faithdial", "rlhflow"]


@pytest.mark.parametrize("task", TASKS)
def test_task_yaml_loads_and_names_registered_functions(task):
    cfg = load_task(task)
    assert cfg.task == task and cfg.sources and cfg.datasets
    for name, src in cfg.sources.items():
        get_loader(src.loader)
        assert src.files, f"{task}: source {name} names no files"
        assert (src.hub_id and src.revision) or src.path, (
            f"{task}: source {name} has neither a pinned hub id nor a path"
        )
    for name, ds in cfg.datasets.items():
        get_builder(ds.builder)
        unknown = [i for i in ds.inputs if i not in cfg.sources and i not in cfg.datasets]
        assert not unknown, f"{task}: dataset {name} has unknown inputs {unknown}"
        tok = ds.options.get("tokenizer")
        if tok is not None:  # real runs use the seed's hub tokenizer; tests override it locally
            assert tok.get("hub_id") and tok.get("revision") and "path" not in tok
