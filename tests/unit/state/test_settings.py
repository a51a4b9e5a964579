import pytest
from pydantic import ValidationError

from core.settings import load_settings


def test_state_cluster_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("LANEWAY_STATE_REDIS_URL", "redis://10.0.0.5:7000/0")
    monkeypatch.setenv("LANEWAY_STATE_REDIS_CLUSTER", "true")
    settings = load_settings()
    assert settings.state_redis_cluster is True
    assert settings.effective_state_redis_url == "redis://10.0.0.5:7000/0"


def test_a_state_cluster_needs_its_own_url(monkeypatch):
    monkeypatch.delenv("LANEWAY_STATE_REDIS_URL", raising=False)
    with pytest.raises(ValidationError, match="LANEWAY_STATE_REDIS_URL"):
        load_settings(state_redis_cluster=True)
