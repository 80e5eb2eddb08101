"""LoRA artifacts: ``merge: true`` saves a plain model, ``merge: false`` only the adapter and its base's
source; every loader (causal LM, sequence classifier, the reward-model scorer) gives back base + adapter."""

import json

import pandas as pd
import pytest
import torch
from engine_worker import ROWS, tiny_lm

from rlhf_core.config import ComputeConfig, LoraConfig, ModelSource, TrainConfig
from rlhf_core.models.load import ADAPTER_BASE, load_causal_lm, load_sequence_classifier, save_model
from rlhf_core.rewards.classifiers import RewardModelLogitScorer
from rlhf_core.train import rm_losses
from rlhf_core.train.offline import train_offline
from rlhf_core.train.reward_model import pair_step, train_sequence_rm

TRAIN = TrainConfig(epochs=1, batch_size=4, lr=1e-2, max_length=48, checkpoint_every=100, seed=1)
PAIRS = pd.DataFrame(
    {"prompt": ROWS["prompt"][:8], "chosen": ROWS["completion"][:8], "rejected": ROWS["completion"][4:12].tolist()}
)
IDS = torch.tensor([[5, 40, 41, 70, 9, 33]])


def lora(merge: bool) -> ComputeConfig:
    return ComputeConfig(lora=LoraConfig(r=4, alpha=8, dropout=0.0, merge=merge))


@pytest.fixture
def base(tmp_path):
    """The tiny GPT-2 saved as a local model: the base an adapter names."""
    model, tok = tiny_lm()
    save_model(model, tok, tmp_path / "base")
    return ModelSource(path=str(tmp_path / "base")), tok


@pytest.mark.parametrize("merge", [False, True])
def test_a_causal_lm_artifact_loads_as_the_trained_model(tmp_path, base, merge):
    source, tok = base
    trained = train_offline(
        load_causal_lm(source), tok, ROWS, "nll", TRAIN, tmp_path / "work", compute=lora(merge)
    ).model
    meta = save_model(trained, tok, tmp_path / "out", source)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    if merge:
        assert meta == {} and "model.safetensors" in files and ADAPTER_BASE not in files
    else:  # the adapter alone, a few KB, and where its base is
        assert meta == {"adapter_base": source.path}
        assert {"adapter_model.safetensors", "adapter_config.json", ADAPTER_BASE} <= files
        assert "model.safetensors" not in files
        assert json.loads((tmp_path / "out" / ADAPTER_BASE).read_text())["source"]["path"] == source.path
    loaded = load_causal_lm(ModelSource(path=str(tmp_path / "out")))
    assert type(loaded).__name__ == "GPT2LMHeadModel"  # plain: the adapter is merged on load
    with torch.no_grad():
        want = trained.eval()(IDS).logits
        torch.testing.assert_close(loaded.eval()(IDS).logits, want, rtol=1e-5, atol=1e-5)
        untrained = load_causal_lm(source).eval()(IDS).logits
    assert (want - untrained).abs().max() > 1e-3  # the adapter changed the model, so the equality means something


def test_an_adapter_only_reward_model_scores_like_the_trained_one(tmp_path, base):
    """A sequence-classification adapter keeps its trained score head; the base loads with one label."""
    source, tok = base
    model = load_sequence_classifier(source)
    model.config.pad_token_id = tok.pad_token_id
    bt = pair_step(rm_losses.bradley_terry)
    trained = train_sequence_rm(bt, model, tok, PAIRS, TRAIN, tmp_path / "work", compute=lora(False)).model
    save_model(trained, tok, tmp_path / "rm", source)
    assert json.loads((tmp_path / "rm" / ADAPTER_BASE).read_text())["config"] == {
        "num_labels": 1,
        "pad_token_id": tok.pad_token_id,
    }
    prompts, responses = PAIRS["prompt"].tolist(), PAIRS["chosen"].tolist()
    scorer = RewardModelLogitScorer(model=str(tmp_path / "rm"), max_length=48, progress=False, device="cpu")
    with torch.no_grad():
        want = [
            float(trained.eval()(torch.tensor([tok(p + r)["input_ids"]])).logits[0, 0])
            for p, r in zip(prompts, responses)
        ]
    assert scorer(prompts, responses) == pytest.approx(want, abs=1e-4)
    assert load_sequence_classifier(ModelSource(path=str(tmp_path / "rm"))).config.num_labels == 1


def test_an_adapter_needs_a_base_that_can_be_loaded_again(tmp_path):
    model, tok = tiny_lm()
    trained = train_offline(model, tok, ROWS, "nll", TRAIN, tmp_path / "work", compute=lora(False)).model
    with pytest.raises(ValueError, match="lora.merge: false saves only the adapter"):
        save_model(trained, tok, tmp_path / "out", None)
