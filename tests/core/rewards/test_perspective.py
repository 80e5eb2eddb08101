"""Perspective client: retries with backoff, rate limiting, and a key that never leaks.

No test reaches Google: they inject a transport, or run a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rlhf_core.rewards.perspective import PerspectiveError, PerspectiveScorer, RateLimiter

KEY = "sk-test-7f3a9c-should-never-leak"
ENV = {"PERSPECTIVE_API_KEY": KEY}


def ok(value: float) -> tuple[int, bytes]:
    return 200, json.dumps({"attributeScores": {"TOXICITY": {"summaryScore": {"value": value}}}}).encode()


class Script:
    """A transport that answers from a list and records what it was sent."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def __call__(self, url, body, headers, timeout_s):
        self.requests.append((url, json.loads(body), dict(headers)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def scorer(transport, clock=None, **kw) -> PerspectiveScorer:
    clock = clock or FakeClock()
    return PerspectiveScorer(transport=transport, environ=ENV, clock=clock, sleep=clock.sleep, **kw)


def test_reward_is_one_minus_toxicity_of_the_completion_only():
    transport = Script(ok(0.25), ok(0.75))
    assert scorer(transport)(["prompt a", "prompt b"], ["hello", "you idiot"]) == [0.75, 0.25]
    (_, body, headers), _ = transport.requests
    assert body["comment"] == {"text": "hello"} and body["requestedAttributes"] == {"TOXICITY": {}}
    assert headers["x-goog-api-key"] == KEY


def test_retries_with_exponential_backoff_then_succeeds():
    clock = FakeClock()
    transport = Script((429, b"{}"), (503, b"{}"), ConnectionResetError(), ok(0.1))
    assert scorer(transport, clock, qps=100.0).toxicity(["x"]) == [0.1]
    assert len(transport.requests) == 4
    assert [s for s in clock.sleeps if s >= 1.0] == [1.0, 2.0, 4.0]


def test_gives_up_after_max_retries_without_leaking_the_key(caplog):
    body = json.dumps({"error": {"message": f"quota exceeded for key {KEY}"}}).encode()
    transport = Script(*[(429, body)] * 3)
    s = scorer(transport, max_retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(PerspectiveError) as err:
        s.toxicity(["x"])
    assert "after 3 attempts" in str(err.value) and "HTTP 429" in str(err.value)
    assert KEY not in str(err.value) and KEY not in caplog.text
    assert "<secret>" in str(err.value)


def test_permission_errors_are_not_retried_and_refused_texts_score_nan():
    transport = Script((403, b'{"error": {"message": "API key not valid"}}'))
    with pytest.raises(PerspectiveError, match="HTTP 403"):
        scorer(transport).toxicity(["x"])
    assert len(transport.requests) == 1
    refused = scorer(Script((400, b'{"error": {"message": "language not supported"}}')))
    assert math.isnan(refused.toxicity(["¿qué?"])[0])


def test_key_is_absent_from_repr_and_attributes():
    s = scorer(Script())
    assert KEY not in repr(s) and KEY not in str(vars(s))


def test_missing_key_names_the_variable():
    with pytest.raises(PerspectiveError, match="MY_KEY_VAR"):
        PerspectiveScorer(api_key_env="MY_KEY_VAR", environ={})


def test_rate_limiter_spaces_requests():
    clock = FakeClock()
    limiter = RateLimiter(qps=2.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.wait()
    assert clock.sleeps == [0.5, 0.5]
    clock.now += 10  # idle long enough: no wait
    limiter.wait()
    assert clock.sleeps == [0.5, 0.5]


def test_requests_to_a_local_server_over_http():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, self.headers.get("x-goog-api-key")))
            self.rfile.read(int(self.headers["Content-Length"]))
            status, payload = (503, b"{}") if len(seen) == 1 else ok(0.4)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        clock = FakeClock()
        s = PerspectiveScorer(
            endpoint=f"http://127.0.0.1:{server.server_port}/v1alpha1/comments:analyze",
            environ=ENV,
            timeout_s=5.0,
            clock=clock,
            sleep=clock.sleep,
        )
        assert s(["p"], ["hi"]) == [pytest.approx(0.6)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert seen == [("/v1alpha1/comments:analyze", KEY)] * 2  # retried once; key in the header, not the URL
