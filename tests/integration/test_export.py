"""Export: JSON Lines streamed by time, PII masked unless the key has the export scope; ``laneway export``."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from cli.main import main as cli
from state.models import utcnow
from tests.browser.support import serve

pytestmark = pytest.mark.redis_server

TENANT = "acme-insurance"
PLAIN = {"Authorization": "Bearer dev-acme-api-key"}
EXPORT = {"Authorization": "Bearer dev-acme-export-key"}
CUSTOMERS = [f"+1555765030{i}" for i in range(5)]


@pytest.fixture
def day(post_sms, work):
    for i, cid in enumerate(CUSTOMERS):
        post_sms(f"my name is Dana Reyes{i}, what are your opening hours", cid)
        work()


def lines(answer) -> list[dict]:
    return [json.loads(line) for line in answer.get_data(as_text=True).splitlines() if line]


def test_export_masks_pii_without_the_export_scope(client, day):
    masked = client.get(f"/api/v1/tenants/{TENANT}/export", headers=PLAIN)
    assert masked.status_code == 200 and masked.mimetype == "application/x-ndjson"
    assert masked.headers["X-Export-Masked"] == "true"
    body = masked.get_data(as_text=True)
    records = lines(masked)
    assert len(records) == 5
    for number in CUSTOMERS:
        assert number not in body and number[-7:] not in body  # only the last four digits are left
    assert "Dana" not in body and "opening hours" not in body
    first = records[0]
    assert first["conversation_id"] == "***" + CUSTOMERS[0][-4:]
    assert {e["author"] for e in first["transcript"]} == {"customer", "ai"} and first["transcript"][0]["text"] == "[masked]"

    full = client.get(f"/api/v1/tenants/{TENANT}/export", headers=EXPORT)
    assert full.headers["X-Export-Masked"] == "false"
    records = lines(full)
    assert [r["conversation_id"] for r in records] == CUSTOMERS  # oldest activity first
    assert records[0]["transcript"][0]["text"] == "my name is Dana Reyes0, what are your opening hours"


def test_export_pages_by_time_with_a_cursor(client, day):
    seen, cursor = [], None
    for _ in range(5):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(f"/api/v1/tenants/{TENANT}/export{query}", headers=EXPORT)
        seen += [r["conversation_id"] for r in lines(answer)]
        cursor = answer.headers.get("X-Next-Cursor")
        if not cursor:
            break
    assert seen == CUSTOMERS
    future = quote((utcnow() + timedelta(hours=1)).isoformat())
    assert lines(client.get(f"/api/v1/tenants/{TENANT}/export?since={future}&until={future}", headers=EXPORT)) == []


def test_export_refuses_clearly(client):
    base = f"/api/v1/tenants/{TENANT}/export"
    assert client.get(base).status_code == 401
    assert client.get(base, headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    assert client.get(base + "?since=yesterday", headers=PLAIN).status_code == 400
    assert client.get(base + "?limit=0", headers=PLAIN).status_code == 400
    assert client.get(base + "?limit=10001", headers=PLAIN).status_code == 400
    assert client.get(base + "?cursor=%%%", headers=PLAIN).status_code == 400
    assert client.get(base + "?since=2026-02-01&until=2026-01-01", headers=PLAIN).status_code == 400


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_laneway_export_follows_the_pages_and_keeps_the_masking(app, day, fmt, tmp_path):
    since = (utcnow() - timedelta(hours=1)).isoformat()
    with serve(app) as url:
        masked = CliRunner().invoke(cli, ["export", "--tenant", TENANT, "--since", since, "--format", fmt, "--url", url,
                                          "--page-size", "2"], env={"LANEWAY_API_KEY": "dev-acme-api-key"})
        out = tmp_path / f"export.{fmt}"
        full = CliRunner().invoke(cli, ["export", "--tenant", TENANT, "--since", since, "--format", fmt, "--url", url,
                                        "--output", str(out)], env={"LANEWAY_API_KEY": "dev-acme-export-key"})
        refused = CliRunner().invoke(cli, ["export", "--tenant", TENANT, "--since", "nope", "--url", url],
                                     env={"LANEWAY_API_KEY": "dev-acme-api-key"})
    assert masked.exit_code == 0, masked.output
    assert "5 conversations exported" in masked.stderr
    assert not any(n in masked.stdout for n in CUSTOMERS) and "Dana" not in masked.stdout
    assert full.exit_code == 0, full.output
    text = out.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["conversation_id"] for r in rows if r["author"] == "customer"] == CUSTOMERS
        assert rows[0]["text"].startswith("my name is Dana Reyes0")
    else:
        assert [json.loads(line)["conversation_id"] for line in text.splitlines()] == CUSTOMERS
    assert refused.exit_code != 0 and "since must be an ISO 8601" in refused.output
