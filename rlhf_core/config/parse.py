"""The strict reader behind task configs: plain data in, typed frozen dataclasses out.

``parse_section(SFTConfig, {...})`` builds any config type from YAML/JSON data, failing with the
key's path on an unknown key, a missing required key or a wrongly typed value; ``to_dict`` is its
inverse; ``apply_override`` applies one ``key.path=value`` to the raw data first.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any, Literal

import yaml

from rlhf_core.errors import UserError

# A number as users write it: YAML 1.1 reads 5e-4 and 1e3 (no dot, no signed exponent) as strings.
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# Counts, sizes and rates that must be positive in whichever section they appear: 0 or less would
# train, generate or shard nothing (and ``epochs: -1`` would finish at once with an untrained model).
POSITIVE = frozenset(
    {
        "epochs",
        "ppo_epochs",
        "steps",
        "gating_steps",
        "batch_size",
        "mini_batch_size",
        "grad_accum",
        "prompts_per_rollout",
        "samples_per_prompt",
        "responses_per_prompt",
        "lr",
        "max_length",
        "max_prompt_length",
        "max_new_tokens",
        "checkpoint_every",
        "vocab_size",
        "min_frequency",
        "n_entities",
        "max_asked",
        "num_heads",
        "num_beams",
        "shards",
        "kl_stop_count",
        "n_layer",
        "n_head",
        "n_embd",
        "n_positions",
        "r",
        "alpha",
    }
)


class ConfigError(UserError, ValueError):
    """A task config is invalid; the message names the file and the key path."""


def to_dict(cfg: Any) -> Any:
    """A config (or section) as plain JSON-able data, for snapshots and hashing."""
    return json.loads(json.dumps(cfg, default=_as_json))


def parse_section(tp: Any, value: Any, where: str = "") -> Any:
    """Build a config dataclass (or any config type) from plain data, strictly: the inverse of ``to_dict``."""
    return _build(tp, value, where)


def _as_json(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not part of a config")


def apply_override(raw: dict, item: str, fname: str) -> None:
    """Set one ``key.path=value`` (the value parsed as YAML) in raw config data, creating sections."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"{fname}: override {item!r} must look like key.path=value")
    node = raw
    *parents, leaf = key.split(".")
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), dict):
            node[part] = {} if part not in node else node[part]
            if not isinstance(node[part], dict):
                raise ConfigError(f"{fname}: override {key}: {'.'.join(parents[: i + 1])} is not a section")
        node = node[part]
    node[leaf] = yaml.safe_load(value)


def _build(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    label = where or "<root>"
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _build(inner, value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a mapping, got {value!r}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ConfigError(f"{label}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
        kwargs = {}
        for name, f in fields.items():
            sub = f"{where}.{name}" if where else name
            if name in value:
                kwargs[name] = _build(hints[name], value[name], sub)
                if name in POSITIVE and isinstance(kwargs[name], (int, float)) and not kwargs[name] > 0:
                    raise ConfigError(f"{sub}: must be positive, got {value[name]!r}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{sub}: required key is missing")
        try:
            return tp(**kwargs)
        except ConfigError as err:  # a check of the whole section; the root's needs no label
            raise ConfigError(f"{where}: {err}" if where else str(err)) from None
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{label}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{label}: expected a list, got {value!r}")
        return [_build(args[0], v, f"{label}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{label}: expected a mapping, got {value!r}")
        return {_build(args[0], k, label): _build(args[1], v, f"{label}.{k}") for k, v in value.items()}
    if tp in (int, float) and isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        value = _number(value.strip(), tp, label)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label}: expected a number, got {value!r}")
        return float(value)
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{label}: expected {tp.__name__}, got {value!r}")
        return value
    if tp is Any:
        return value
    raise ConfigError(f"{label}: unsupported config type {tp!r}")


def _number(text: str, tp: type, label: str) -> int | float:
    """A numeric string for a number field; an int field takes only whole values (``1e3``, not ``1.5``)."""
    value = float(text)
    if tp is float:
        return value
    if not value.is_integer():
        raise ConfigError(f"{label}: expected int, got {text!r}")
    return int(value)
