"""The judge resource: where a chat judge is asked, and its key read only from the environment."""

import pytest

from resources import build_resources
from rlhf_core.config import JudgeConfig
from rlhf_core.errors import UserError


def test_the_environment_names_the_endpoint_and_holds_the_key(monkeypatch):
    monkeypatch.setenv("RLHF_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("RLHF_JUDGE_MODEL", "judge-from-env")
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-only-in-env")
    judge = build_resources()["judge"]
    endpoint = judge.endpoint(JudgeConfig(kind="chat", model="judge-from-config", api_key_env="MY_JUDGE_KEY"))
    assert (endpoint.base_url, endpoint.model, endpoint.api_key) == (
        "http://127.0.0.1:9/v1",
        "judge-from-env",
        "sk-only-in-env",
    )
    assert "sk-only-in-env" not in repr(endpoint) and "sk-only-in-env" not in repr(judge)


def test_a_chat_judge_without_an_endpoint_is_a_user_error_and_a_scorer_judge_needs_none(monkeypatch):
    monkeypatch.delenv("RLHF_JUDGE_BASE_URL", raising=False)
    monkeypatch.delenv("RLHF_JUDGE_MODEL", raising=False)
    judge = build_resources()["judge"]
    with pytest.raises(UserError, match="RLHF_JUDGE_BASE_URL"):
        judge.endpoint(JudgeConfig(kind="chat", model="m"))
    assert judge.endpoint(JudgeConfig(kind="scorer", scorer="gold")) is None
