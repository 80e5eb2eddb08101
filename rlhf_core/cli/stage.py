"""Run one heavy stage without Dagster: a config file and an output directory in, the artifact out.

    python -m rlhf_core.cli.stage sft_model --config configs/tasks/demo.yaml --out data/artifacts \\
        --input tok=data/artifacts/demo/tokenizer/<key> --input data=data/artifacts/demo/sft_data/<key>
    python -m rlhf_core.cli.stage policy --config resolved.json --out DIR --arg algorithm=a_lol \\
        --input sft=... --input value=... --input pairs=... --input prompts=... --input scorers.rm=...
    python -m rlhf_core.cli.stage evaluation ... --input scorers.rm=DIR --input scorers.gold=DIR

Every stage whose inputs are artifacts and plain arguments is a command; its flags come from its
declaration (``rlhf_core.stages.base``): ``--input NAME=DIR`` per artifact (an optional one may be
left out), ``--input NAME.KEY=DIR`` per entry of a mapping, ``--arg NAME=VALUE`` per plain argument.

``--config`` is a task YAML (with ``--set key=value`` overrides) or a resolved JSON (``to_dict`` of a
TaskConfig). ``--out`` is an artifact store root: the artifact is written to
``<out>/<task>/<asset>[/<partition>]/<key>/`` with the same key and files as the Dagster asset
builds, so a launcher (``accelerate launch``, Dagster Pipes) can run it on another machine and
hand the directory back. Inputs are artifact directories (each has a ``meta.json``); ``name.k=DIR``
collects a mapping (every component's scorer). The artifact path and metadata go to stdout as JSON.
A user error prints one ``error:`` line and exits with status 2 (``--debug``: with its traceback).

Under ``torchrun`` / ``accelerate launch`` every rank runs the command and trains; rank 0 alone
writes the artifact (the others stop once the engine has gathered the weights). Started by a
Dagster launcher through Pipes (``DAGSTER_PIPES_CONTEXT`` set), rank 0 also opens Pipes, logs
into the run and reports the artifact path, content hash, world size and scalar metadata as the
asset's materialization; ``dagster_pipes`` is imported only then, so the core stays framework-free.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rlhf_core.cli.common import guarded, output_flags, quiet_libraries
from rlhf_core.config import ConfigError, load_config
from rlhf_core.errors import MissingInputError
from rlhf_core.stages import all_stages
from rlhf_core.stages.base import Stage
from rlhf_core.store import META_FILE, ArtifactRef, ArtifactStore


def artifact(path: str) -> ArtifactRef:
    """A stored artifact directory as a ref (its content hash from its ``meta.json``)."""
    folder = Path(path).resolve()
    meta = folder / META_FILE
    if not meta.exists():
        raise MissingInputError(f"{folder}: not an artifact (no {META_FILE})")
    return ArtifactRef(str(folder), json.loads(meta.read_text())["content_hash"], folder.name, cached=True)


def commands() -> dict[str, Stage]:
    """The stages the command runs: those whose every input a flag can give."""
    return {name: s for name, s in all_stages().items() if s.inputs is not None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rlhf_core.cli.stage", description=__doc__.split("\n\n")[0], parents=[output_flags()]
    )
    parser.add_argument("stage", choices=sorted(commands()))
    parser.add_argument("--config", required=True, help="task YAML or resolved JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="artifact store root to write into")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--rebuild",
        action="append",
        default=[],
        metavar="ASSET",
        help="an asset name (sft_model) built again even where the store has it",
    )
    return parser


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def call_args(stage: Stage, inputs: dict[str, str], args: dict[str, str]) -> list[Any]:
    """The stage's arguments after (task, store) from its ``--input`` and ``--arg`` flags."""
    values: list[Any] = []
    for param in stage.inputs:
        name, kind = param.name, param.kind
        if kind in ("str", "int"):
            if name not in args:
                raise ConfigError(f"{stage.name}: missing --arg {name}=VALUE")
            values.append(int(args[name]) if kind == "int" else args[name])
        elif kind == "mapping":
            values.append(
                {k.removeprefix(name + "."): artifact(v) for k, v in inputs.items() if k.startswith(name + ".")}
            )
        elif name in inputs:
            values.append(artifact(inputs[name]))
        elif kind == "optional":
            values.append(None)
        else:
            raise ConfigError(f"{stage.name}: missing --input {name}=DIR")
    return values


def command_args(stage: Stage, args: tuple[Any, ...]) -> list[str]:
    """The ``--input`` / ``--arg`` flags that hand ``args`` (as a stage call takes them) to this command."""
    if len(args) != len(stage.inputs):
        raise TypeError(f"{stage.name} takes {len(stage.inputs)} arguments after (task, store), got {len(args)}")
    flags: list[str] = []
    for param, value in zip(stage.inputs, args):
        if param.kind in ("str", "int"):
            flags += ["--arg", f"{param.name}={value}"]
        elif param.kind == "mapping":
            flags += [x for k, ref in sorted(value.items()) for x in ("--input", f"{param.name}.{k}={ref.path}")]
        elif value is not None:
            flags += ["--input", f"{param.name}={value.path}"]
    return flags


def world() -> tuple[int, int]:
    """(rank, processes) of this process as torchrun and accelerate launch set them."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


@contextlib.contextmanager
def pipes_reporter(name: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """``report(summary)``: to Dagster through Pipes on rank 0 of a Pipes launch, a no-op otherwise."""
    rank, processes = world()
    if rank != 0 or "DAGSTER_PIPES_CONTEXT" not in os.environ:
        yield lambda summary: None
        return
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        for handler in pipes.log.handlers:  # the core's own warnings (unpinned revisions, ...) go to the run too
            logging.getLogger("rlhf_core").addHandler(handler)
        pipes.log.info(f"{name}: started on {processes} process(es), pid {os.getpid()}")

        def report(summary: dict[str, Any]) -> None:
            pipes.log.info(f"{name}: {'found' if summary['cached'] else 'wrote'} {summary['artifact']}")
            pipes.report_asset_materialization(
                metadata={
                    **summary["metadata"],
                    "artifact": {"raw_value": summary["artifact"], "type": "path"},
                    "content_hash": summary["content_hash"],
                    "cached": summary["cached"],
                    "processes": processes,
                },
                data_version=summary["content_hash"],
            )

        yield report


def run(opts: argparse.Namespace) -> int:
    from rlhf_core.train.loop import NotMainProcess

    with pipes_reporter(opts.stage) as report:
        ArtifactStore(opts.out).localize_record(opts.config)  # a pod fetches a launch's config from the store
        task = load_config(opts.config, opts.overrides)
        stage = commands()[opts.stage]
        try:
            store = ArtifactStore(opts.out, rebuild=opts.rebuild)
            for path in _pairs(opts.input, "--input").values():  # a pod's own cache fetches its inputs
                store.localize(path)
            ref, meta = stage(task, store, *call_args(stage, _pairs(opts.input, "--input"), _pairs(opts.arg, "--arg")))
        except NotMainProcess:
            return 0  # rank 0 writes and reports the artifact
        summary = {
            "artifact": ref.path,
            "content_hash": ref.content_hash,
            "cached": ref.cached,
            "metadata": {
                k: v
                for k, v in meta.items()
                if isinstance(v, (int, float, str, bool)) and k not in ("artifact", "content_hash", "cached")
            },
        }
        report(summary)
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    quiet_libraries(opts.verbose)
    return guarded(lambda: run(opts), opts.debug)


if __name__ == "__main__":
    sys.exit(main())
