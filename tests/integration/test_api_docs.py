"""``GET /api/docs``: every operation with its parameters, request and response bodies and examples, served locally.

Each example the page shows is checked against the schema it illustrates
(JSON Schema 2020-12, the document's own components), so a drifting
example fails here.
"""

from __future__ import annotations

import html
import json
import re

import jsonschema_rs
import pytest

from service.api_docs import example_of, operations
from service.openapi import build_document

pytestmark = pytest.mark.redis_server

PRE = re.compile(r'<pre class="example (request|response)-example">(.*?)</pre>', re.S)
LINES = re.compile(r'<pre class="example lines-example">(.*?)</pre>', re.S)
FLASK_ARG = re.compile(r"<(?:[a-z]+:)?(\w+)>")
DOCUMENTED_PREFIX = "/api/v1/"


def validator(doc: dict, schema: dict):
    return jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})


def test_the_docs_page_shows_every_operation_with_bodies_and_valid_examples(client):
    doc = build_document()
    answer = client.get("/api/docs")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    # Served locally: no script at all, no stylesheet or image from elsewhere.
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    ops = operations(doc)
    assert len(ops) == sum(len([m for m in item if m in ("get", "post", "put", "delete")]) for item in doc["paths"].values())
    for op in ops:
        assert f'id="{op["id"]}"' in page
    examples = [(kind, json.loads(html.unescape(text))) for kind, text in PRE.findall(page)]
    assert sum(1 for kind, _ in examples if kind == "request") == sum(1 for op in ops if op["request"])
    assert sum(1 for kind, _ in examples if kind == "response") == sum(1 for op in ops for r in op["responses"] if r["body"])
    # JSON Lines answers (export, consent as jsonl): an example line per item, each valid against the item schema.
    lines_examples = [html.unescape(text) for text in LINES.findall(page)]
    assert len(lines_examples) == sum(1 for op in ops for r in op["responses"] if r["lines"]) >= 2
    export = doc["paths"]["/api/v1/tenants/{tenant_id}/export"]["get"]["responses"]["200"]["content"]["application/x-ndjson"]
    item = validator(doc, export["schema"]["items"])
    export_lines = lines_examples[[op["id"] for op in ops if any(r["lines"] for r in op["responses"])].index("exportConversations")]
    for line in export_lines.splitlines():
        assert [e.message for e in item.iter_errors(json.loads(line))] == []
    # The reply operation: its body's fields and example, its 202 answer's example, and the schema tables.
    section = page[page.index('id="replyAsHuman"'):page.index("</section>", page.index('id="replyAsHuman"'))]
    assert 'href="#schema-ReplyBody"' in section and "&#34;text&#34;: &#34;Hi, this is Alice from Acme.&#34;" in section
    assert "Example 202 response" in section and 'href="#schema-EventAccepted"' in section
    assert 'id="schema-ContextPacket"' in page and 'id="schema-CsatReport"' in page
    # Every example on the page is valid against its schema (request bodies and every 2xx JSON body).
    checked = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            bodies = [media] if media else []
            bodies += [r["content"][media] for s, r in op["responses"].items() if s.startswith("2")
                       for media in ("application/json", "application/x-ndjson") if media in r.get("content", {})]
            for body in bodies:
                example = body.get("example", example_of(body["schema"], doc["components"]["schemas"]))
                errors = [e.message for e in validator(doc, body["schema"]).iter_errors(example)]
                assert errors == [], f"{method.upper()} {path}: {errors[:3]}"
                checked += 1
    assert checked >= 20


def test_every_api_v1_route_the_app_serves_is_documented(app):
    """Flask's url_map under /api/v1 and the document's paths are the same set of (method, path)."""
    doc = build_document()
    documented = {(method.upper(), path) for path, item in doc["paths"].items() if path.startswith(DOCUMENTED_PREFIX)
                  for method in item if method in ("get", "post", "put", "patch", "delete")}
    served = {(method, FLASK_ARG.sub(r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(DOCUMENTED_PREFIX) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(served) >= 30
    assert sorted(served - documented) == [], "served under /api/v1 but not in service/openapi.py"
    assert sorted(documented - served) == [], "in service/openapi.py but not served"


def test_examples_are_made_from_the_schema_where_the_document_has_none():
    schemas = {"Thing": {"type": "object", "properties": {
        "tenant_id": {"type": "string"}, "created_at": {"type": "string"}, "n": {"type": "integer", "minimum": 3},
        "kind": {"enum": ["a", "b"]}, "tags": {"type": "array", "items": {"type": "string"}},
        "maybe": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/Other"}]},
    }}, "Other": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "examples": [{"ok": True}]}}
    assert example_of({"$ref": "#/components/schemas/Thing"}, schemas) == {
        "tenant_id": "acme-insurance", "created_at": "2026-12-07T10:00:00+00:00", "n": 3, "kind": "a",
        "tags": ["tags"], "maybe": {"ok": True},
    }
