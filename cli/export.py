"""``laneway export``: a tenant's conversations as JSON Lines or CSV, through the export API.

It reads ``GET /api/v1/tenants/<tenant>/export`` (:mod:`service.export_api`)
page after page (``X-Next-Cursor``), so the command sees exactly what the API
shows the key: phone numbers and texts masked unless the key has the
``export`` scope, and every page in the tenant's audit trail.

JSONL: one conversation per line, as the API streams it. CSV: one row per
message (:data:`CSV_COLUMNS`; a conversation without messages is one row
with the message columns empty).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import IO, Any, Iterator
from urllib.parse import quote

import click
import requests

CSV_COLUMNS = (
    "conversation_id", "channel", "lane", "status", "handoff_reason", "created_at", "last_activity_at",
    "author", "author_id", "message_channel", "at", "text",
)
TIMEOUT_S = 30


def conversations(url: str, tenant: str, api_key: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Yield every conversation the export API answers, following ``X-Next-Cursor``.

    Raises:
        click.ClickException: the API refused (its error is shown) or could not be reached.
    """
    endpoint = f"{url.rstrip('/')}/api/v1/tenants/{quote(tenant, safe='')}/export"
    headers = {"Authorization": f"Bearer {api_key}"}
    query = dict(params)
    while True:
        try:
            with requests.get(endpoint, params=query, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
                if response.status_code != 200:
                    try:
                        message = response.json().get("error", response.text)
                    except ValueError:
                        message = response.text
                    raise click.ClickException(f"export API answered {response.status_code}: {message}")
                for line in response.iter_lines():
                    if line:
                        yield json.loads(line)
                cursor = response.headers.get("X-Next-Cursor")
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach {endpoint}: {exc}") from exc
        if not cursor:
            return
        query["cursor"] = cursor


def csv_rows(conversation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The CSV rows of one exported conversation (one per message)."""
    base = {k: conversation.get(k) for k in CSV_COLUMNS[:7]}
    messages = conversation.get("transcript") or [None]
    for m in messages:
        yield {**base, **({} if m is None else {
            "author": m["author"], "author_id": m.get("author_id"), "message_channel": m.get("channel"),
            "at": m["at"], "text": m["text"],
        })}


def write(out: IO[str], items: Iterator[dict[str, Any]], fmt: str) -> int:
    """Write ``items`` to ``out`` as ``jsonl`` or ``csv``; return how many conversations."""
    n = 0
    if fmt == "jsonl":
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            n += 1
        return n
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for item in items:
        writer.writerows(csv_rows(item))
        n += 1
    return n


@click.command("export")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--since", required=True, help="Start of the range (ISO 8601 date or datetime; UTC without an offset).")
@click.option("--until", default=None, help="End of the range (default now).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help="File (default stdout).")
@click.option("--url", default=None, help="Laneway's base URL (default $LANEWAY_URL, else http://127.0.0.1:$PORT).")
@click.option("--api-key", envvar="LANEWAY_API_KEY", required=True, help="Operator API key ($LANEWAY_API_KEY); the export scope unmasks PII.")
@click.option("--page-size", default=1000, show_default=True, type=click.IntRange(1, 10_000), help="Conversations per API page.")
def export_command(tenant: str, since: str, until: str | None, fmt: str, output: str | None, url: str | None,
                   api_key: str, page_size: int) -> None:
    """Export a tenant's conversations active in a time range (JSONL or CSV; PII masked without the export scope)."""
    base = url or os.environ.get("LANEWAY_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    params = {"since": since, "limit": str(page_size), **({"until": until} if until else {})}
    items = conversations(base, tenant, api_key, params)
    if output is None:
        n = write(sys.stdout, items, fmt)
    else:
        with open(output, "w", newline="", encoding="utf-8") as out:
            n = write(out, items, fmt)
    click.echo(f"{n} conversations exported", err=True)
