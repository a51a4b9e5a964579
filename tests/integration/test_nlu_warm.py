"""Workers warm the NLU for every stored tenant before their first job (jobs.worker.warm_nlu)."""

from __future__ import annotations

import pytest

from agents.nlu import classifier as nlu_classifier
from jobs.worker import warm_nlu

pytestmark = pytest.mark.redis_server


def test_warm_nlu_trains_a_classifier_for_every_stored_tenant(rt, monkeypatch):
    trained: list[int] = []
    real = nlu_classifier.IntentClassifier

    def counting(examples):
        trained.append(len(examples))
        return real(examples)

    monkeypatch.setattr(nlu_classifier, "_cache", type(nlu_classifier._cache)())
    monkeypatch.setattr(nlu_classifier, "_by_config", {})
    monkeypatch.setattr(nlu_classifier, "IntentClassifier", counting)

    assert warm_nlu(rt) == 2  # acme-insurance and bright-clinic
    assert len(trained) == 3  # the repository's examples alone, then one per tenant (their FAQs differ)
    for tenant_id in ("acme-insurance", "bright-clinic"):
        tenant = rt.tenants.get(tenant_id)
        count = len(trained)
        nlu_classifier.classifier_for(tenant)  # a turn after the warm-up trains nothing
        assert len(trained) == count


def test_warm_nlu_survives_a_redis_error(rt, monkeypatch):
    import redis

    def broken(*args, **kwargs):
        raise redis.ConnectionError("down")

    monkeypatch.setattr(rt.state_redis, "smembers", broken)
    assert warm_nlu(rt) == 0
