"""The operator API's audit trail against real Redis."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from state import keys as K
from state.audit import AuditEntry, AuditLog

pytestmark = pytest.mark.redis_server

CUSTOMER = "+15557654321"
ACME = {"Authorization": "Bearer dev-acme-api-key"}


def audit(client, query: str = "", headers=ACME):
    return client.get(f"/api/v1/tenants/acme-insurance/audit{query}", headers=headers)


def test_operator_actions_are_recorded_with_the_request_id_and_nothing_personal(client, post_sms, work):
    post_sms("hello", CUSTOMER)
    work()
    url = f"/api/v1/tenants/acme-insurance/conversations/{quote(CUSTOMER, safe='')}"
    answer = client.get(url, headers={**ACME, "X-Request-Id": "req-123"})
    assert answer.status_code == 200 and answer.headers["X-Request-Id"] == "req-123"
    client.get(url)  # no key: refused, only counted (GET …/audit/refused)
    client.get(url, headers={"X-Request-Id": "bad id with spaces"} | ACME)

    entries = audit(client).get_json()["entries"]
    assert [(e["method"], e["status"], e["credential"]) for e in entries] == [
        ("GET", "200", "dev-acme"), ("GET", "200", "dev-acme"),
    ]
    first = entries[-1]
    assert first["request_id"] == "req-123" and first["tenant_id"] == "acme-insurance"
    assert first["path"] == "/api/v1/tenants/acme-insurance/conversations/***4321"
    assert float(first["duration_ms"]) > 0 and first["at"].endswith("+00:00")
    assert entries[0]["request_id"] != "bad id with spaces" and len(entries[0]["request_id"]) == 32
    assert all(CUSTOMER not in str(e) and "dev-acme-api-key" not in str(e) for e in entries)


def test_pages_and_isolation(client, r):
    for _ in range(5):
        client.get("/api/v1/tenants/acme-insurance/usage", headers=ACME)
    page = audit(client, "?count=3").get_json()
    assert len(page["entries"]) == 3 and page["next_before"] == page["entries"][-1]["id"]
    rest = audit(client, f"?count=3&before={page['next_before']}").get_json()
    assert len(rest["entries"]) == 2 and rest["next_before"] is None  # the two oldest usage reads
    assert rest["entries"][0]["id"] < page["next_before"]
    for query in ("?count=0", "?count=x", "?before=yesterday"):
        assert audit(client, query).status_code == 400
    assert audit(client, headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    client.get("/api/v1/tenants/no-such-tenant/usage", headers=ACME)
    assert not r.exists(K.audit("no-such-tenant"))  # nobody could read it, anybody could fill it


def test_entries_leave_by_age_and_by_count(r):
    log = AuditLog(r, retention_days=1, max_entries=100)
    r.xadd(K.audit("acme-insurance"), {"old": "1"}, id="1000-0")  # from 1970
    entry = AuditEntry("r1", "acme-insurance", "dev-acme", "GET", "/x", 200, 1.0, "2026-11-23T00:00:00+00:00")
    log.record(entry)
    assert [e.get("request_id") for e in log.read("acme-insurance", 10)] == ["r1"]
    for _ in range(150):
        log.record(entry)
    assert r.xlen(K.audit("acme-insurance")) == 100


def test_admin_actions_are_in_the_tenants_trail(client, monkeypatch):
    monkeypatch.setenv("LANEWAY_ADMIN_API_KEY", "test-admin-key")
    assert client.post("/api/v1/admin/tenants/acme-insurance/disable", headers={"Authorization": "Bearer test-admin-key"}).status_code == 200
    [entry] = audit(client).get_json()["entries"]
    assert (entry["credential"], entry["method"], entry["path"], entry["status"]) == (
        "admin", "POST", "/api/v1/admin/tenants/acme-insurance/disable", "200",
    )


def test_refused_requests_never_evict_or_imitate_genuine_entries(app, client, r):
    """Issue 18 item 5: 1,000 requests with forged keys; before, they filled the trail as the tenant's prefix."""
    svc = app.extensions["laneway"]
    svc.audit = AuditLog(svc.audit.redis, retention_days=90, max_entries=100)  # the smallest cap allowed
    genuine = [audit(client, headers={**ACME, "X-Request-Id": f"genuine-{n}"}) for n in range(5)]
    assert all(a.status_code == 200 for a in genuine)
    junk = [
        {"Authorization": "Bearer dev-acme-api-kez"}, {"Authorization": "Bearer forged-key-0001"}, {},
        {"Authorization": "Bearer dev-bright-api-key"},
    ]
    for n in range(1000):
        client.get(f"/api/v1/tenants/acme-insurance/usage?n={n}", headers=junk[n % len(junk)])

    entries = audit(client, "?count=1000").get_json()["entries"]
    assert {f"genuine-{n}" for n in range(5)} <= {e["request_id"] for e in entries}
    assert {e["credential"] for e in entries} == {"dev-acme"} and {e["status"] for e in entries} == {"200"}
    assert all("usage" not in e["path"] for e in entries)
    [today] = audit(client, "/refused").get_json()["days"][-1:]
    assert today["total"] == 1000
    assert {row["client"] for row in today["by_client"]} == {"127.0.0.1"}
    assert {row["status"] for row in today["by_client"]} <= {401, 404, 429}


def test_the_refused_report_validates_its_range(client):
    for query in ("?from=2026-01-10&to=2026-01-01", "?from=2026-01-01&to=2026-03-01", "?to=yesterday"):
        answer = audit(client, "/refused" + query)
        assert answer.status_code == 400, query
    assert audit(client, "/refused", headers={}).status_code == 401
    page = audit(client, "/refused?from=2026-01-01&to=2026-01-03").get_json()
    assert page == {"tenant_id": "acme-insurance", "from": "2026-01-01", "to": "2026-01-03",
                    "days": [{"day": f"2026-01-0{n}", "total": 0, "by_client": []} for n in (1, 2, 3)]}


def test_a_failed_admin_key_is_never_shown_as_admin(client, monkeypatch):
    monkeypatch.setenv("LANEWAY_ADMIN_API_KEY", "test-admin-key")
    assert client.post("/api/v1/admin/tenants/acme-insurance/disable", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert audit(client).get_json()["entries"] == []  # only counted as refused
    [today] = audit(client, "/refused").get_json()["days"][-1:]
    assert today["by_client"] == [{"client": "127.0.0.1", "status": 401, "count": 1}]
