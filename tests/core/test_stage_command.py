"""The stage command's flags come from each stage's declaration: what a launcher writes
(``command_args``) the command reads back (``call_args``) as the same stage arguments, for every
stage whose inputs a flag can give; the flags of the launched stages keep their documented names."""

import json

import pytest

from rlhf_core.cli.stage import _pairs, _parser, call_args, command_args, commands
from rlhf_core.config import ConfigError
from rlhf_core.stages import models, rl
from rlhf_core.store import META_FILE, ArtifactRef


def stored(folder, name: str) -> ArtifactRef:
    folder = folder / name
    folder.mkdir()
    (folder / META_FILE).write_text(json.dumps({"content_hash": f"hash-{name}"}))
    return ArtifactRef(str(folder), f"hash-{name}", name, cached=True)


def example_args(tmp_path, stage, optional_given: bool) -> list:
    values = []
    for param in stage.inputs:
        if param.kind == "str":
            values.append("a_lol")
        elif param.kind == "int":
            values.append(3)
        elif param.kind == "mapping":
            values.append({k: stored(tmp_path, f"{param.name}-{k}") for k in ("gold", "rm")})
        elif param.kind == "optional" and not optional_given:
            values.append(None)  # an optional input left out
        else:
            values.append(stored(tmp_path, param.name))
    return values


@pytest.mark.parametrize("optional_given", [False, True])
@pytest.mark.parametrize("name", sorted(commands()))
def test_launcher_flags_read_back_as_the_same_stage_arguments(tmp_path, name, optional_given):
    stage = commands()[name]
    args = example_args(tmp_path, stage, optional_given)
    opts = _parser().parse_args([name, "--config", "c.yaml", "--out", "o", *command_args(stage, tuple(args))])
    assert call_args(stage, _pairs(opts.input, "--input"), _pairs(opts.arg, "--arg")) == args


def test_the_launched_stages_are_commands_under_their_documented_flags(tmp_path):
    assert {
        "sft_model",
        "reward_model",
        "reference_value",
        "policy",
        "generations",
        "annotate_shard",
        "evaluation",
    } <= set(commands())
    args = ("dpo", None, None, stored(tmp_path, "pairs"), stored(tmp_path, "prompts"), {"rm": stored(tmp_path, "rm")})
    assert command_args(rl.policy, args) == [
        "--arg",
        "algorithm=dpo",
        "--input",
        f"pairs={tmp_path}/pairs",
        "--input",
        f"prompts={tmp_path}/prompts",
        "--input",
        f"scorers.rm={tmp_path}/rm",
    ]


def test_a_stage_that_takes_a_table_or_a_path_is_no_command():
    assert "combine_rewards" not in commands() and "leaderboard" not in commands()


def test_a_wrong_argument_count_and_a_missing_input_are_refused(tmp_path):
    with pytest.raises(TypeError, match="sft_model takes 2 arguments"):
        command_args(models.sft_model, ())
    with pytest.raises(ConfigError, match="sft_model: missing --input data=DIR"):
        call_args(models.sft_model, {"tok": str(stored(tmp_path, "tok").path)}, {})
