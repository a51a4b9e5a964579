"""The analytics page in Chromium: a scripted day of conversations, then the charts show its numbers.

Chart.js is served from Laneway itself (``/dashboard/analytics/static/vendor/chartjs``):
the test records every request the page makes and refuses any to another
host. The charts are read back through Chart.js's own registry
(``Chart.getChart``) and checked for drawn pixels.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.support import ARTIFACTS, DESKTOP, serve
from tests.support.analytics_day import EXPECTED, TENANT, script_day

pytestmark = pytest.mark.redis_server


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"voice_reply_wait_s": 0.2})


def chart_data(page, canvas_id: str) -> dict:
    return page.evaluate(
        """(id) => { const c = Chart.getChart(id);
             return {labels: c.data.labels, datasets: c.data.datasets.map((d) => ({label: d.label, data: d.data}))}; }""",
        canvas_id,
    )


def painted(page, canvas_id: str) -> int:
    """How many pixels of the canvas are not transparent (a drawn chart has thousands)."""
    return page.evaluate(
        """(id) => { const c = document.getElementById(id); const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n; }""",
        canvas_id,
    )


def test_the_analytics_page_charts_a_scripted_day(browser, app, client, post_sms, work, r, standin):
    script_day(client, post_sms, work, app.extensions["laneway"], r)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    hosts: set[str] = set()
    page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))
    try:
        with serve(app) as url:
            page.goto(f"{url}/dashboard/analytics")
            page.fill("#tenant", TENANT)
            page.fill("#apikey", "dev-acme-api-key")
            page.click("#signin-form button[type=submit]")
            page.wait_for_selector("body[data-rendered=true]")

            assert page.text_content("#t-conversations") == str(EXPECTED["conversations"])
            assert page.text_content("#t-containment") == "50 %"
            assert page.text_content("#t-escalations") == "3 (60 %)"
            assert page.text_content("#t-csat") == "4 (2)"
            assert page.text_content("#t-spend") == "$0.0123"

            days = chart_data(page, "chart-days")
            assert len(days["labels"]) == 14 and days["datasets"][0]["label"] == "conversations"
            assert sum(days["datasets"][0]["data"]) == EXPECTED["conversations"] and sum(days["datasets"][1]["data"]) == 3
            reasons = chart_data(page, "chart-reasons")
            assert dict(zip(reasons["labels"], reasons["datasets"][0]["data"])) == EXPECTED["escalations_by_reason"]
            funnel = chart_data(page, "chart-funnel")
            assert funnel["labels"][:3] == ["started", "1. About you", "2. Contact details"]
            assert funnel["datasets"][0]["data"] == [EXPECTED["forms_started"], *EXPECTED["funnel_reached"], 0]
            assert funnel["datasets"][1]["data"] == [0, *EXPECTED["funnel_dropped"], 0]
            dims = chart_data(page, "chart-dimensions")
            by_label = dict(zip(dims["labels"], dims["datasets"][0]["data"]))
            assert by_label["channel sms"] == 4 and by_label["channel voice"] == 1
            assert sum(chart_data(page, "chart-spend")["datasets"][0]["data"]) == EXPECTED["llm_cost_usd"]
            for canvas in ("chart-days", "chart-reasons", "chart-funnel", "chart-dimensions", "chart-frt", "chart-spend"):
                assert painted(page, canvas) > 500, canvas
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "analytics_page.png"), full_page=True)
            assert hosts == {urlsplit(url).netloc}  # Chart.js and the data come from Laneway; no CDN
    finally:
        context.close()
