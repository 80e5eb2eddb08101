"""Run one heavy stage without Dagster: a config file and an output directory in, the artifact out.

    python -m rlhf_core.cli.stage sft_model --config configs/tasks/demo.yaml --out data/artifacts \\
        --input tok=data/artifacts/demo/tokenizer/<key> --input data=data/artifacts/demo/sft_data/<key>
    python -m rlhf_core.cli.stage policy --config resolved.json --out DIR --arg algorithm=a_lol \\
        --input sft=... --input value=... --input pairs=... --input prompts=... --input scorers.rm=...
    python -m rlhf_core.cli.stage evaluation ... --input scorers.rm=DIR --input scorers.gold=DIR

``--config`` is a task YAML (with ``--set key=value`` overrides) or a resolved JSON (``to_dict`` of a
TaskConfig). ``--out`` is an artifact store root: the artifact is written to
``<out>/<task>/<asset>[/<partition>]/<key>/`` with the same key and files as the Dagster asset
builds, so a launcher (``accelerate launch``, Dagster Pipes) can run it on another machine and
hand the directory back. Inputs are artifact directories (each has a ``meta.json``); ``name.k=DIR``
collects a mapping (every component's scorer). The artifact path and metadata go to stdout as JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rlhf_core.config import load_config
from rlhf_core.stages import annotation, evaluation, models, reward_models, rl
from rlhf_core.stages.base import Stage
from rlhf_core.store import META_FILE, ArtifactRef, ArtifactStore

# stage -> its parameters after (task, store): "name" an artifact, "name?" an optional one,
# "name*" a {key: artifact} mapping, "=name" / "=name:int" a plain argument.
COMMANDS: dict[str, tuple[Stage, list[str]]] = {
    "sft_model": (models.sft_model, ["tok", "data"]),
    "reward_model": (reward_models.reward_model, ["=name", "tok?", "sft?", "data*", "world?"]),
    "reference_value": (rl.reference_value, ["sft", "prompts", "rewards", "scorers*"]),
    "policy": (rl.policy, ["=algorithm", "sft?", "value?", "pairs?", "prompts", "scorers*"]),
    "generations": (evaluation.generations, ["=algorithm", "policy", "prompts"]),
    "annotate_shard": (annotation.annotate_shard, ["=component", "=shard:int", "data", "scorer"]),
    "evaluation": (evaluation.evaluation, ["=algorithm", "gen", "scorers*"]),
}


def artifact(path: str) -> ArtifactRef:
    """A stored artifact directory as a ref (its content hash from its ``meta.json``)."""
    folder = Path(path).resolve()
    meta = folder / META_FILE
    if not meta.exists():
        raise SystemExit(f"{folder}: not an artifact (no {META_FILE})")
    return ArtifactRef(str(folder), json.loads(meta.read_text())["content_hash"], folder.name, cached=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_core.cli.stage", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=sorted(COMMANDS))
    parser.add_argument("--config", required=True, help="task YAML or resolved JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="artifact store root to write into")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE")
    return parser


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def call_args(params: list[str], inputs: dict[str, str], args: dict[str, str]) -> list[Any]:
    values: list[Any] = []
    for param in params:
        if param.startswith("="):
            name, _, kind = param[1:].partition(":")
            if name not in args:
                raise SystemExit(f"missing --arg {name}=VALUE")
            values.append(int(args[name]) if kind == "int" else args[name])
        elif param.endswith("*"):
            prefix = param[:-1] + "."
            values.append({k.removeprefix(prefix): artifact(v) for k, v in inputs.items() if k.startswith(prefix)})
        elif param.endswith("?"):
            values.append(artifact(inputs[param[:-1]]) if param[:-1] in inputs else None)
        elif param not in inputs:
            raise SystemExit(f"missing --input {param}=DIR")
        else:
            values.append(artifact(inputs[param]))
    return values


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    task = load_config(opts.config, opts.overrides)
    stage, params = COMMANDS[opts.stage]
    ref, meta = stage(task, ArtifactStore(opts.out), *call_args(params, _pairs(opts.input, "--input"),
                                                                 _pairs(opts.arg, "--arg")))
    print(json.dumps({"artifact": ref.path, "content_hash": ref.content_hash, "cached": ref.cached,
                      "metadata": {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
