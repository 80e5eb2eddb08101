"""Perspective API toxicity as the detoxification reward ``1 - TOXICITY`` ([FG] detox, docs/sources.md §1.1).

Optional: it needs an API key and network access. The key is read from an environment variable
(``PERSPECTIVE_API_KEY`` unless told otherwise), sent in the ``x-goog-api-key`` header (never in a
URL), and kept out of logs, ``repr`` and error messages. Requests are spaced to ``qps`` and retried
with exponential backoff on 429, 5xx and connection errors.

    scorer = build_scorer("perspective", qps=1.0)
    rewards = scorer(prompts, completions)   # 1 - toxicity of each completion
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from rlhf_core.rewards.base import register

log = logging.getLogger(__name__)

ENDPOINT = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# (url, body, headers, timeout_s) -> (HTTP status, response body); raises OSError when unreachable.
Transport = Callable[[str, bytes, Mapping[str, str], float], tuple[int, bytes]]


class PerspectiveError(RuntimeError):
    """A request failed for good (after retries, or with a status that retrying cannot fix)."""


class _Secret:
    """Holds a string without ever showing it (repr, str, vars of the owner)."""

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


def urllib_transport(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> tuple[int, bytes]:
    """POST with the standard library; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class RateLimiter:
    """Spaces calls at least ``1 / qps`` seconds apart (Perspective's default quota is 1 QPS)."""

    def __init__(
        self, qps: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ):
        if qps <= 0:
            raise ValueError(f"qps must be positive, got {qps}")
        self.interval = 1.0 / qps
        self.clock, self.sleep = clock, sleep
        self._next = -math.inf

    def wait(self) -> None:
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@register("perspective")
class PerspectiveScorer:
    """``1 - TOXICITY`` summary score of each completion (the prompt is not sent).

    A text the API refuses (HTTP 400, e.g. an unsupported language) scores NaN, TRL's "no reward"
    value, which annotation quarantines; any other failure raises ``PerspectiveError``.
    """

    name = "perspective"

    def __init__(
        self,
        api_key_env: str = "PERSPECTIVE_API_KEY",
        attribute: str = "TOXICITY",
        languages: tuple[str, ...] = ("en",),
        qps: float = 1.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 32.0,
        timeout_s: float = 30.0,
        endpoint: str = ENDPOINT,
        transport: Transport | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        """Read the key and set up rate limiting.

        Args:
            api_key_env: Name of the environment variable holding the API key.
            attribute: Perspective attribute whose summary score is used.
            languages: Languages declared in each request.
            qps: Most requests per second.
            max_retries: Retries of one text after the first attempt.
            backoff_s: First retry delay; doubled each retry up to ``max_backoff_s``.
            max_backoff_s: Cap on one retry delay.
            timeout_s: Per-request timeout.
            endpoint: API URL (tests point it at a local server).
            transport: Sends one request; default ``urllib_transport``.
            environ: Where to read the key; default ``os.environ``.
            sleep, clock: Injected in tests so nothing really waits.
        """
        environ = os.environ if environ is None else environ
        key = environ.get(api_key_env)
        if not key:
            raise PerspectiveError(f"environment variable {api_key_env} is not set (it must hold the API key)")
        self._key = _Secret(key)
        self.attribute, self.languages = attribute, list(languages)
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.timeout_s, self.endpoint = timeout_s, endpoint
        self.transport = transport or urllib_transport
        self.sleep = sleep
        self.limiter = RateLimiter(qps, clock=clock, sleep=sleep)
        self.version = f"1+{attribute}"

    def __repr__(self) -> str:
        return f"PerspectiveScorer(attribute={self.attribute!r}, endpoint={self.endpoint!r})"

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return [1.0 - t for t in self.toxicity(completions)]

    def toxicity(self, texts: list[str]) -> list[float]:
        """The attribute's summary score per text (NaN where the API refuses the text)."""
        return [self._score_one(text) for text in texts]

    def _score_one(self, text: str) -> float:
        body = json.dumps(
            {
                "comment": {"text": text},
                "languages": self.languages,
                "requestedAttributes": {self.attribute: {}},
                "doNotStore": True,
            }
        ).encode()
        headers = {"Content-Type": "application/json", "x-goog-api-key": self._key.reveal()}
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.sleep(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
            self.limiter.wait()
            try:
                status, payload = self.transport(self.endpoint, body, headers, self.timeout_s)
            except OSError as err:
                problem = f"connection error ({type(err).__name__})"
                log.warning("perspective: %s, attempt %d", problem, attempt + 1)
                continue
            if status == 200:
                return float(json.loads(payload)["attributeScores"][self.attribute]["summaryScore"]["value"])
            problem = f"HTTP {status}: {self._redact(self._api_message(payload))}"
            if status == 400:
                log.warning("perspective: text refused (%s); scored NaN", problem)
                return math.nan
            if status not in RETRY_STATUSES:
                raise PerspectiveError(f"Perspective request failed with {problem}")
            log.warning("perspective: %s, attempt %d", problem, attempt + 1)
        raise PerspectiveError(f"Perspective request failed after {self.max_retries + 1} attempts: {problem}")

    @staticmethod
    def _api_message(payload: bytes) -> str:
        try:
            return str(json.loads(payload)["error"]["message"])[:300]
        except (ValueError, KeyError, TypeError):
            return payload[:300].decode("utf-8", "replace")

    def _redact(self, message: str) -> str:
        return message.replace(self._key.reveal(), "<secret>")
