"""``lora.merge: false`` through the pipeline: the demo's SFT model and reward model as adapter-only
artifacts on a local base model, the reward model's base being the SFT adapter artifact itself."""

import json
import math

import dagster as dg
import torch

from pipelines.task_defs import build_task_definitions
from resources import build_resources
from rlhf_core.config import ModelSource, load_config, task_config_path
from rlhf_core.models.load import ADAPTER_BASE, load_causal_lm, save_model
from rlhf_core.rewards.base import build_scorer
from tests.conftest import _gpt2_config, gpt2_tokenizer
from tests.dagster.test_pipeline import MICRO


def test_sft_and_reward_model_adapters_train_save_and_load(tmp_path, monkeypatch):
    from transformers import GPT2LMHeadModel

    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RLHF_LAUNCHER", raising=False)
    tok = gpt2_tokenizer()
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    save_model(GPT2LMHeadModel(_gpt2_config(tok)), tok, tmp_path / "base")
    base = {"path": str(tmp_path / "base")}
    task = load_config(
        task_config_path("demo"),
        MICRO
        + [
            f"tokenizer.source={json.dumps(base)}",
            f"sft.model={json.dumps(base)}",
            "compute.lora={r: 4, alpha: 8, dropout: 0.0, merge: false}",
        ],
    )
    rm = dg.AssetKey(["demo", "reward_model"])
    result = dg.materialize(
        build_task_definitions(task).assets,
        selection=dg.AssetSelection.assets(rm).upstream(),
        partition_key="bt",
        resources=build_resources(str(tmp_path / "artifacts")),
        instance=dg.DagsterInstance.get(),
    )
    assert result.success
    sft, reward = result.output_for_node("demo__sft_model"), result.output_for_node("demo__reward_model")["bt"]
    for ref, expected_base in ((sft, base["path"]), (reward, sft.path)):
        files = {p.name for p in ref.dir.iterdir()}
        assert {"adapter_model.safetensors", ADAPTER_BASE} <= files and "model.safetensors" not in files
        assert ref.meta()["metadata"]["adapter_base"] == expected_base
    # The RM scores through the registry's scorer, loading base -> SFT adapter -> RM adapter.
    scorer = build_scorer("reward_model", model=reward.path, progress=False, device="cpu")
    scores = scorer(["Question: a? Answer:", "Question: b? Answer:"], [" yes.", " no."])
    assert len(scores) == 2 and all(math.isfinite(v) for v in scores)
    sft_model = load_causal_lm(ModelSource(path=sft.path))
    plain = load_causal_lm(ModelSource(**base))
    ids = torch.tensor([[5, 40, 41, 70]])
    with torch.no_grad():
        assert (sft_model.eval()(ids).logits - plain.eval()(ids).logits).abs().max() > 1e-4  # the adapter trained
