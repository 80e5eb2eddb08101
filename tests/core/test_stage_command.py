"""The stage command's flags: what a launcher writes (``command_args``) the command reads back
(``call_args``) as the same stage arguments, and each command names every argument its stage takes."""
import inspect
import json

import pytest

from rlhf_core.cli.stage import COMMANDS, _pairs, _parser, call_args, command_args
from rlhf_core.store import META_FILE, ArtifactRef


def stored(folder, name: str) -> ArtifactRef:
    folder = folder / name
    folder.mkdir()
    (folder / META_FILE).write_text(json.dumps({"content_hash": f"hash-{name}"}))
    return ArtifactRef(str(folder), f"hash-{name}", name, cached=True)


def example_args(tmp_path, params: list[str]) -> list:
    values = []
    for param in params:
        name = param.strip("=*?").partition(":")[0]
        if param.startswith("="):
            values.append(3 if param.endswith(":int") else "a_lol")
        elif param.endswith("*"):
            values.append({k: stored(tmp_path, f"{name}-{k}") for k in ("gold", "rm")})
        elif param.endswith("?"):
            values.append(None)  # an optional input left out
        else:
            values.append(stored(tmp_path, name))
    return values


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_launcher_flags_read_back_as_the_same_stage_arguments(tmp_path, name):
    stage, params = COMMANDS[name]
    assert len(params) == len(inspect.signature(stage.fn).parameters) - 1  # every argument after ctx
    args = example_args(tmp_path, params)
    opts = _parser().parse_args([name, "--config", "c.yaml", "--out", "o", *command_args(name, tuple(args))])
    assert call_args(params, _pairs(opts.input, "--input"), _pairs(opts.arg, "--arg")) == args


def test_a_wrong_argument_count_is_refused():
    with pytest.raises(TypeError, match="sft_model takes 2 arguments"):
        command_args("sft_model", ())
