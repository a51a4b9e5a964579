"""Analytics from a scripted day of conversations through the real webhooks and workers.

The counters are kept at commit time: reading them afterwards must not
depend on the conversations still being stored (they are deleted before the
second read, and the answer is the same).
"""

from __future__ import annotations

import pytest

from tests.support.analytics_day import EXPECTED, TENANT, script_day

pytestmark = pytest.mark.redis_server

KEY = {"Authorization": "Bearer dev-acme-api-key"}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"voice_reply_wait_s": 0.2})


def test_a_scripted_day_adds_up(client, post_sms, work, app, r, standin):
    script_day(client, post_sms, work, app.extensions["laneway"], r)
    answer = client.get(f"/api/v1/tenants/{TENANT}/analytics", headers=KEY)
    assert answer.status_code == 200
    data = answer.get_json()
    totals = data["totals"]
    for name in ("conversations", "escalations", "escalations_by_reason", "resolved", "resolved_by_ai",
                 "containment_rate", "forms_started", "llm_cost_usd"):
        assert totals[name] == EXPECTED[name], name
    assert totals["escalation_rate"] == 0.6
    assert totals["csat"] == {"count": 2, "average": EXPECTED["csat_average"], "by_score": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}}
    frt = totals["first_response"]
    assert frt["count"] == EXPECTED["frt_count"] and 0 <= frt["median_s"] <= frt["p90_s"] <= 5  # replied within seconds
    assert [p["reached"] for p in data["funnel"]["pages"]] == EXPECTED["funnel_reached"]
    assert [p["dropped"] for p in data["funnel"]["pages"]] == EXPECTED["funnel_dropped"]
    assert data["funnel"]["pages"][0]["title"] == "About you" and data["funnel"]["submitted"] == 0
    assert {c: v["conversations"] for c, v in data["by_channel"].items()} == EXPECTED["by_channel_conversations"]
    # the caller's spoken request counts on voice; the callback task (no speech in its turn) on the conversation's sms
    assert data["by_channel"]["voice"]["escalations"] == 1 and data["by_channel"]["sms"]["escalations"] == 2
    assert data["by_lane"]["support"]["resolved_by_ai"] == 1
    assert sum(d["conversations"] for d in data["days"]) == 5 and len(data["days"]) == 14  # the day (a script over midnight: two)
    assert sum(d["llm_cost_usd"] for d in data["days"]) == EXPECTED["llm_cost_usd"]

    # Reading is independent of the stored conversations: delete them all, the answer is unchanged.
    doomed = [k for k in r.scan_iter(match=f"lw:{{{TENANT}|*", count=1000)] + [k for k in r.scan_iter(match="lw:{f:*", count=1000)]
    assert doomed
    r.delete(*doomed)
    assert client.get(f"/api/v1/tenants/{TENANT}/analytics", headers=KEY).get_json() == data


def test_analytics_refuses_clearly(client):
    base = f"/api/v1/tenants/{TENANT}/analytics"
    assert client.get(base).status_code == 401
    assert client.get(base, headers={"Authorization": "Bearer dev-bright-api-key"}).status_code == 404
    assert client.get(base + "?from=yesterday", headers=KEY).status_code == 400
    assert client.get(base + "?from=2026-02-01&to=2026-01-01", headers=KEY).status_code == 400
    assert client.get(base + "?from=2020-01-01&to=2026-01-01", headers=KEY).status_code == 400
    empty = client.get(base + "?from=2026-01-01&to=2026-01-02", headers=KEY).get_json()
    assert empty["totals"]["conversations"] == 0 and empty["totals"]["containment_rate"] is None
    assert empty["totals"]["first_response"] == {"count": 0, "median_s": None, "p90_s": None}
