"""Hub loading takes a pinned revision and keeps remote code off; offline it fails clearly."""

import pytest

from rlhf_core.config import ModelSource
from rlhf_core.models.load import OfflineHubError, hub_kwargs, load_causal_lm


def test_hub_source_passes_revision_and_keeps_remote_code_off():
    name, kwargs = hub_kwargs(ModelSource(hub_id="gpt2", revision="607a30d"))
    assert name == "gpt2"
    assert kwargs == {"revision": "607a30d", "trust_remote_code": False}


def test_local_path_source():
    assert hub_kwargs(ModelSource(path="/models/x")) == ("/models/x", {"trust_remote_code": False})


def test_offline_hub_request_fails_before_any_network_call(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineHubError, match="gpt2@607a30d"):
        load_causal_lm(ModelSource(hub_id="gpt2", revision="607a30d"))
