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
