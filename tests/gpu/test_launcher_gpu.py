"""The launcher on CUDA (skipped without it; ``make gpu-check`` runs it): the demo's ``sft_model``
with the gpu profile, as ``accelerate launch --config_file configs/accelerate/single_gpu.yaml`` of the
stage command through Dagster Pipes; the artifact loads back."""

import dagster as dg
import pytest
import torch

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import ModelSource, load_config, task_config_path
from rlhf_core.models.load import load_causal_lm
from tests.dagster.test_pipeline import MICRO

pytestmark = pytest.mark.gpu


def test_sft_model_through_accelerate_launch_on_the_gpu(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RLHF_LAUNCHER", raising=False)
    task = load_config(task_config_path("demo"), MICRO, profile="gpu")
    assert task.launcher.kind == "subprocess" and task.launcher.accelerate_config == "single_gpu"
    key = dg.AssetKey(["demo", "sft_model"])
    result = dg.materialize(
        build_task_definitions(task).assets,
        selection=dg.AssetSelection.assets(key).upstream(),
        resources=build_resources(str(tmp_path / "artifacts")),
        instance=dg.DagsterInstance.get(),
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("demo__sft_model")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["processes"] == 1 and meta["launcher"] == "subprocess" and meta["steps"] > 0
    model = load_causal_lm(ModelSource(path=meta["artifact"]))
    assert all(torch.isfinite(p).all() for p in model.parameters())
