"""The takeover API with state on a Redis Cluster: every script stays in one slot, the feed streams.

State on the private 3-primary cluster (``cluster``), the queue on the shared
test database; a claim, a reply, the list, the context packet and the live
feed must work there as on one server.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import ACME_NUMBER

pytestmark = [pytest.mark.redis_server, pytest.mark.state_on_cluster]

CUSTOMER = "+15557654321"
BASE = "/api/v1/tenants/acme-insurance"
URL = f"{BASE}/conversations/{quote(CUSTOMER, safe='')}"
ALICE = {"Authorization": "Bearer dev-acme-api-key", "X-Operator": "alice"}


def test_takeover_on_a_cluster(app, client, post_sms, work, standin):
    app.config.update(FEED_BLOCK_MS=300, FEED_STREAM_S=1)
    post_sms("I want to talk to a person", CUSTOMER)
    work()
    rows = client.get(f"{BASE}/conversations?needs_attention=true", headers=ALICE).get_json()["conversations"]
    assert [r["conversation_id"] for r in rows] == [CUSTOMER]
    assert client.post(f"{URL}/claim", headers=ALICE).status_code == 200
    assert client.post(f"{URL}/claim", headers={**ALICE, "X-Operator": "bob"}).status_code == 409
    assert client.post(f"{URL}/reply", json={"text": "Hello from Alice"}, headers=ALICE).status_code == 202
    work()
    assert [(m["To"], m["From"], m["Body"]) for m in standin.messages()][-1] == (CUSTOMER, ACME_NUMBER, "Hello from Alice")
    assert client.get(f"{URL}/context", headers=ALICE).get_json()["claimed_by"]["operator_id"] == "alice"
    assert client.post(f"{URL}/handback", headers=ALICE).status_code == 202
    token = client.post(f"{BASE}/events/token", headers=ALICE).get_json()
    body = app.test_client().get(token["url"] + "&last_event_id=0-0").get_data(as_text=True)
    assert body.count("event: feed") >= 2 and CUSTOMER in body
