"""Bugs schemathesis found in the HTTP API, pinned."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.redis_server

ACME = {"Authorization": "Bearer dev-acme-api-key"}


@pytest.mark.parametrize("before", ["0-0", "99999999999999999999-0"])
def test_audit_before_at_the_edges_of_the_id_range(client, before):
    """``before=0-0`` was a Redis error (503): ``(0-0`` is no valid exclusive bound; so was an id past 64 bits."""
    client.get("/api/v1/tenants/acme-insurance/usage", headers=ACME)
    response = client.get(f"/api/v1/tenants/acme-insurance/audit?before={before}", headers=ACME)
    assert response.status_code == 200
    assert len(response.get_json()["entries"]) == (0 if before == "0-0" else 1)


def test_405_names_the_allowed_methods(client):
    """RFC 9110 §15.5.6: a 405 carries ``Allow``; the JSON error handler used to drop it."""
    response = client.put("/api/v1/tenants/acme-insurance/usage", headers=ACME)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.get_json() == {"error": "method not allowed", "status": 405}


def test_admin_bodies_are_not_coerced(client, monkeypatch):
    """``"disabled": 0`` violates the published schema (boolean) and was accepted."""
    monkeypatch.setenv("LANEWAY_ADMIN_API_KEY", "k")
    response = client.post(
        "/api/v1/admin/tenants/acme-insurance/numbers",
        json={"number": "+15550007777", "move": 0},
        headers={"Authorization": "Bearer k"},
    )
    assert response.status_code == 400
    assert "move" in response.get_json()["error"]


# -- consent, analytics, export (documented in the OpenAPI document this session) ------------------------


@pytest.mark.parametrize("endpoint", ["consent", "export"])
def test_an_empty_cursor_is_refused(client, endpoint):
    """schemathesis: ``cursor=`` (violating the consent cursor's pattern; no export cursor is empty) was read
    as no cursor and answered the first page."""
    response = client.get(f"/api/v1/tenants/acme-insurance/{endpoint}?cursor=", headers=ACME)
    assert response.status_code == 400
    assert "cursor" in response.get_json()["error"]


@pytest.mark.parametrize("limit", ["1_0", " 5", "+5"])
def test_a_consent_limit_must_be_plain_digits(client, limit):
    """``int()`` took ``1_0``, `` 5`` and ``+5``, none of them the documented integer."""
    response = client.get("/api/v1/tenants/acme-insurance/consent", query_string={"limit": limit}, headers=ACME)
    assert response.status_code == 400
    assert "limit" in response.get_json()["error"]


def test_an_empty_operator_name_is_refused_by_the_consent_api(client):
    """schemathesis: ``X-Operator:`` (empty, violating its pattern) recorded an opt-out by nobody (202)."""
    response = client.post("/api/v1/tenants/acme-insurance/consent/%2B15557654321",
                           json={"action": "opt_out", "method": "operator"}, headers={**ACME, "X-Operator": ""})
    assert response.status_code == 400
    assert "X-Operator" in response.get_json()["error"]


@pytest.mark.parametrize("path", [
    "/api/v1/tenants/acme-insurance/analytics?to=0001-01-05",
    "/api/v1/tenants/acme-insurance/usage?to=0001-01-05",
    "/api/v1/tenants/acme-insurance/audit/refused?to=0001-01-01",
    "/api/v1/tenants/acme-insurance/export?until=0001-01-01",
])
def test_a_range_ending_in_year_one_is_a_400_not_a_500(client, path):
    """The default start (``to`` minus the default days) fell before year 1: OverflowError, a 500."""
    response = client.get(path, headers=ACME)
    assert response.status_code == 400
    assert "too early" in response.get_json()["error"]


def test_a_range_ending_in_year_one_with_its_start_is_answered(client):
    response = client.get("/api/v1/tenants/acme-insurance/analytics?from=0001-01-01&to=0001-01-05", headers=ACME)
    assert response.status_code == 200
    assert [d["day"] for d in response.get_json()["days"]][0] == "0001-01-01"


@pytest.mark.parametrize("day", ["20261201", "2026-W49-1", "2026-12-01T00:00"])
def test_a_day_is_only_yyyy_mm_dd(client, day):
    """``date.fromisoformat`` (3.11) also took ``20261201`` and ``2026-W49-1``: not the documented format: date."""
    response = client.get("/api/v1/tenants/acme-insurance/analytics", query_string={"from": day}, headers=ACME)
    assert response.status_code == 400
    assert "from must be a date" in response.get_json()["error"]


@pytest.mark.parametrize("limit", ["²", "١٠"])
def test_an_export_limit_of_unicode_digits_is_a_400(client, limit):
    """``"²".isdigit()`` is true and ``int("²")`` a ValueError: the export answered 500."""
    response = client.get("/api/v1/tenants/acme-insurance/export", query_string={"limit": limit}, headers=ACME)
    assert response.status_code == 400
    assert "limit" in response.get_json()["error"]


def test_an_export_cursor_with_a_score_that_is_no_time_is_refused(client):
    """A cursor is ``<ms>|<conversation id>`` in base64; a score of 400 digits (or ``1_0``) is not one."""
    import base64

    for score in ("9" * 400, "1_0"):
        cursor = base64.urlsafe_b64encode(f"{score}|+15557654321".encode()).decode().rstrip("=")
        response = client.get("/api/v1/tenants/acme-insurance/export", query_string={"cursor": cursor}, headers=ACME)
        assert response.status_code == 400, score
        assert response.get_json()["error"] == "malformed cursor"
