"""Compute profiles overlay a task config strictly, and the shipped accelerate configs are valid.

DeepSpeed and FSDP need GPUs to run; here their files go through accelerate's own launch-time
validation and environment preparation, which is what ``accelerate launch`` does before starting.
"""

import pytest
import yaml

from rlhf_core.config import ConfigError, accelerate_dir, load_config, profiles_dir, task_config_path, tasks_dir

PROFILES = sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def test_the_machine_profiles_apply_to_every_task_and_a_task_profile_to_its_task():
    machine = {"cpu", "gpu", "multi_gpu_zero3"}
    assert machine | {"human_feedback"} == set(PROFILES)  # a new profile is placed in one of the two groups
    for task in tasks_dir().glob("*.yaml"):
        for profile in sorted(machine):
            load_config(task, profile=profile)
    load_config(task_config_path("demo"), profile="human_feedback")  # the demo's, as its header says


def test_a_profile_overlays_and_overrides_win():
    plain = load_config(task_config_path("demo"))
    gpu = load_config(task_config_path("demo"), ["compute.lora.r=8"], profile="gpu")
    assert plain.compute.precision == "no" and plain.compute.lora is None
    assert gpu.compute.precision == "bf16" and gpu.launcher.accelerate_config == "single_gpu"
    assert gpu.compute.lora.r == 8 and gpu.compute.lora.alpha == 32  # the override wins, the rest stays
    assert gpu.sft == plain.sft  # only what the profile names changes


def test_an_unknown_key_in_a_profile_fails_like_set(tmp_path, monkeypatch):
    monkeypatch.setattr("rlhf_core.config.loading.profiles_dir", lambda: tmp_path)
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"compute": {"precison": "bf16"}}))
    with pytest.raises(ConfigError, match=r"demo.yaml with profile typo: compute: unknown key\(s\) \['precison'\]"):
        load_config(task_config_path("demo"), profile="typo")
    with pytest.raises(ConfigError, match="no such profile"):
        load_config(task_config_path("demo"), profile="tpu")


@pytest.mark.parametrize(
    "override, message",
    [
        ("compute.precision=fp8", "compute.precision: expected one of"),
        ("compute.quantization=4bit", "quantization trains adapters only"),
        ("launcher.accelerate_config=zero9", "not in configs/accelerate/"),
        ("launcher.processes=0", "launcher.processes must be >= 1"),
        ("launcher.kind=slurm", "launcher.kind: expected one of"),
        ("compute.micro_batch_size=0", "micro_batch_size must be >= 1"),
    ],
)
def test_bad_compute_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(task_config_path("demo"), [override])


def launch_env(config_file) -> dict:
    """The environment ``accelerate launch --config_file <file>`` would give the training processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import (
        prepare_deepspeed_cmd_env,
        prepare_multi_gpu_env,
        prepare_simple_launcher_cmd_env,
    )

    args = launch_command_parser().parse_args(["--config_file", str(config_file), "stage.py"])
    args, defaults, _ = _validate_launch_command(args)
    if args.use_deepspeed:  # as accelerate's launch_command does
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return prepare_deepspeed_cmd_env(args)[1]
    if args.multi_gpu or args.use_fsdp:
        return prepare_multi_gpu_env(args)
    return prepare_simple_launcher_cmd_env(args)[1]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("single_gpu", {"ACCELERATE_MIXED_PRECISION": "bf16", "ACCELERATE_USE_CPU": "False"}),
        ("multi_gpu_ddp", {"ACCELERATE_MIXED_PRECISION": "bf16"}),
        ("deepspeed_zero2", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}),
        (
            "deepspeed_zero3_offload",
            {
                "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
                "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE": "cpu",
                "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE": "cpu",
                "ACCELERATE_DEEPSPEED_ZERO3_INIT": "true",
            },
        ),
        (
            "fsdp",
            {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_AUTO_WRAP_POLICY": "TRANSFORMER_BASED_WRAP"},
        ),
    ],
)
def test_accelerate_configs_validate_as_accelerate_launch_does(name, expected):
    env = launch_env(accelerate_dir() / f"{name}.yaml")
    assert {k: env.get(k) for k in expected} == expected


def test_every_accelerate_config_is_tested():
    assert {p.stem for p in accelerate_dir().glob("*.yaml")} == {
        "single_gpu",
        "multi_gpu_ddp",
        "deepspeed_zero2",
        "deepspeed_zero3_offload",
        "fsdp",
    }
