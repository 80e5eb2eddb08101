"""The ``evaluation.judge`` section: pairwise win rates of each policy against a baseline (rlhf_core/eval/judge.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rlhf_core.config.parse import ConfigError


@dataclass(frozen=True)
class JudgeConfig:
    """Who judges and what is compared.

    ``kind: scorer`` lets a reward component decide (the demo's gold judge: ``scorer: gold``);
    ``kind: chat`` asks an LLM behind an OpenAI-compatible chat API with ``prompt`` (``lol_hha``:
    [LoL]'s helpful/safe prompt; ``alpaca_eval``: the alpaca_eval ranking prompt). Its base URL and
    model come from here or from RLHF_JUDGE_BASE_URL / RLHF_JUDGE_MODEL, its key from the environment
    variable named by ``api_key_env`` (never from a file: the key is in no config, log or metadata).
    """

    kind: Literal["chat", "scorer"]
    scorer: str | None = None  # kind scorer: the annotation.scorers component that decides
    prompt: Literal["lol_hha", "alpaca_eval"] = "alpaca_eval"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int | None = None  # default: the prompt's (lol_hha 200, alpaca_eval 1)
    concurrency: int = 4  # requests in flight
    max_retries: int = 6  # the openai client's retries of 429s, 5xx and connection errors (exponential backoff)
    timeout_s: float = 120.0
    against: str = "sft"  # every policy is compared with this partition's samples
    pairs: list[list[str]] = field(default_factory=list)  # further [model, baseline] comparisons
    agreement: list[str] = field(default_factory=list)  # components whose winner is compared with the judge's
    source_column: str | None = None  # a column of the prompts dataset that groups the agreement
    strip_prefix: str = ""  # removed from the start of each prompt before it is shown ([LoL]: the system line)

    def __post_init__(self) -> None:
        if (self.kind == "scorer") != (self.scorer is not None):
            raise ConfigError("judge: kind scorer needs scorer (a component), and only it")
        if any(len(p) != 2 for p in self.pairs):
            raise ConfigError(f"judge.pairs: each entry is [model, baseline], got {self.pairs}")
        if self.concurrency < 1 or self.max_retries < 0:
            raise ConfigError("judge: concurrency >= 1 and max_retries >= 0")
