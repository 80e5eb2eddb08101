"""Reading a task config: the YAML (or resolved JSON), a profile overlaid, ``key.path=value``
overrides, then the strict parse into ``TaskConfig`` (``parse``)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import yaml

from rlhf_core.config.parse import ConfigError, apply_override, parse_section
from rlhf_core.config.task import TaskConfig
from rlhf_core.paths import profiles_dir, tasks_dir


def load_config(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), profile: str | None = None
) -> TaskConfig:
    """Read a task YAML (or a resolved JSON, which YAML reads too), overlay the profile
    (``configs/profiles/<profile>.yaml``, or for a per-task profile such as ``tiny``,
    ``configs/profiles/<profile>/<task>.yaml``), apply ``key.path=value`` overrides (they win over the
    profile), and validate strictly."""
    path = Path(path)
    raw = _read_mapping(path, "task config")
    label = path.name
    if profile is not None:
        per_task = profiles_dir() / profile
        where = per_task / f"{raw.get('task', path.stem)}.yaml" if per_task.is_dir() else per_task.with_suffix(".yaml")
        _overlay(raw, _read_mapping(where, "profile"))
        label = f"{path.name} with profile {profile}"
    for item in overrides:
        apply_override(raw, item, path.name)
    try:
        return parse_section(TaskConfig, raw)
    except ConfigError as err:
        raise ConfigError(f"{label}: {err}") from None


def _read_mapping(path: Path, kind: str) -> dict:
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"{path}: no such {kind}; known: {known}")
    try:
        # A resolved JSON is read as JSON: YAML 1.1 reads a float such as 1e-08 (no dot) as a string.
        raw = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}{_yaml_position(err)}: invalid YAML: {_yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: top level must be a mapping")
    return raw


def _yaml_position(err: yaml.YAMLError) -> str:
    """``:line:column`` (1-based, as editors count) of a YAML error, where the parser knows it."""
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    context = getattr(err, "context", None)
    return " ".join(p for p in (context, problem) if p) if problem else str(err).splitlines()[0]


def _overlay(base: dict, top: dict) -> None:
    """Merge ``top`` into ``base`` in place: mappings recursively, anything else replaced. A mapping marked
    ``_replace: true`` replaces the base's mapping whole (a scorer's parameters for another base model)."""
    for key, value in top.items():
        if isinstance(value, dict) and value.get("_replace") is True:
            base[key] = {k: v for k, v in value.items() if k != "_replace"}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value


def warn_if_unpinned(hub_id: str, revision: str) -> None:
    """A branch or tag can move under a finished run; only a commit sha reproduces it."""
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        logging.getLogger(__name__).warning(
            "%s@%s: the revision is not a commit sha, so this download is not reproducible", hub_id, revision
        )


def task_config_path(task: str) -> Path:
    return tasks_dir() / f"{task}.yaml"


def header_command(path: Path) -> str | None:
    """The first ``rlhf run`` command of a task file's header comment, its ``\\`` continuations
    joined into one line (the seed tasks' fixture command), or None."""
    if not path.is_file():
        return None
    command = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if command is None and text.startswith("rlhf run"):
            command = text
        elif command is not None and command.endswith("\\"):
            command = command[:-1].rstrip() + " " + text
        elif command is not None:
            break
    return command.split("  #")[0].strip() if command else None
