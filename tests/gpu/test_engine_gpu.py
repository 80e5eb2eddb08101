"""The engine on CUDA (skipped without it; ``make gpu-check`` runs these): device placement,
bf16 with torch.compile, batched generation on the device, QLoRA on a 4-bit base, and DeepSpeed
ZeRO-2 and ZeRO-3 (offloaded, gathered at the end) through ``accelerate launch``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from engine_worker import ROWS, TRAIN, assert_same_weights, tiny_lm  # noqa: E402

from rlhf_core.config import ComputeConfig, GenerationConfig, LoraConfig, ModelSource  # noqa: E402
from rlhf_core.train.batching import collate, encode_pairs, token_logprobs  # noqa: E402
from rlhf_core.train.loop import BatchOrder  # noqa: E402
from rlhf_core.train.offline import train_offline  # noqa: E402

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]
FP32 = ComputeConfig(compile=False)


def first_batch_loss(model, tok) -> float:
    """The summed-NLL loss of the engine's first batch, computed on the CPU without the engine."""
    idx = BatchOrder(len(ROWS), TRAIN.batch_size, TRAIN.seed)(0)
    enc = encode_pairs(tok, ROWS["prompt"].tolist(), ROWS["completion"].tolist(), TRAIN.max_length)
    with torch.no_grad():
        logp, _ = token_logprobs(
            model.cpu(), collate([enc.ids[i] for i in idx], [enc.n_prompt[i] for i in idx], tok.pad_token_id)
        )
    return float(-logp.sum(-1).mean())


def test_the_engine_trains_on_the_gpu_and_agrees_with_the_cpu(tmp_path):
    model, tok = tiny_lm()
    expected = first_batch_loss(model, tok)
    result = train_offline(model, tok, ROWS, "nll", TRAIN, tmp_path, compute=FP32)
    assert next(result.model.parameters()).device.type == "cuda"
    assert result.history[0]["loss"] == pytest.approx(expected, rel=1e-4)


def test_bf16_with_compile_trains_fp32_weights(tmp_path):
    model, tok = tiny_lm()
    expected = first_batch_loss(model, tok)
    result = train_offline(
        model, tok, ROWS, "nll", TRAIN, tmp_path, compute=ComputeConfig(precision="bf16", compile=True)
    )
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert result.history[0]["loss"] == pytest.approx(expected, rel=2e-2)
    assert next(result.model.parameters()).dtype == torch.float32  # autocast: master weights stay fp32


def test_generation_runs_batched_on_the_device_and_matches_one_by_one():
    from rlhf_core.eval.generate import generate

    model, tok = tiny_lm()
    model = model.cuda()
    prompts = ROWS["prompt"].tolist()
    cfg = GenerationConfig(max_new_tokens=12, do_sample=False, batch_size=8)
    batched = generate(model, tok, prompts, cfg)
    single = [
        generate(model, tok, [p], GenerationConfig(max_new_tokens=12, do_sample=False, batch_size=1))[0]
        for p in prompts
    ]
    assert batched == single


def test_qlora_on_a_4bit_llama_trains_only_the_adapters(tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlhf_core.models.load import load_causal_lm

    _, tok = tiny_lm()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path / "base")
    model = load_causal_lm(ModelSource(path=str(tmp_path / "base")), quantization="4bit")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    compute = ComputeConfig(
        precision="bf16", compile=False, quantization="4bit", lora=LoraConfig(r=4, alpha=8, dropout=0.0, merge=False)
    )
    trained = train_offline(model, tok, ROWS, "nll", TRAIN, tmp_path / "work", compute=compute).model
    state = trained.state_dict()
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in state.items() if "lora_B" in k)
    for key, value in state.items():
        if "lora_" not in key:
            name = key.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(value, base[name]), key


@pytest.mark.parametrize("zero", ["deepspeed_zero2", "deepspeed_zero3_offload"])
def test_deepspeed_on_one_gpu_trains_like_plain_data_parallel(tmp_path, zero):
    """ZeRO-3 also checks the gather at the end (Engine.finish): the saved weights are the whole model."""
    pytest.importorskip("deepspeed")
    worker = str(ROOT / "tests" / "core" / "engine_worker.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = {}
    for name, launcher in [
        ("plain", [sys.executable]),
        (
            "deepspeed",
            [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--config_file",
                str(ROOT / "configs" / "accelerate" / f"{zero}.yaml"),
                "--num_processes",
                "1",
                "--mixed_precision",
                "no",
            ],
        ),
    ]:
        out = tmp_path / name
        proc = subprocess.run(
            [*launcher, worker, str(out), str(tmp_path / f"work-{name}")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        from safetensors.torch import load_file

        runs[name] = load_file(out / "weights.safetensors")
    assert_same_weights(runs["plain"], runs["deepspeed"], atol=1e-4)
