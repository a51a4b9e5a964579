"""``GET /api/docs``: the OpenAPI document as a readable page, rendered on the server (no script, no CDN).

Each operation shows its parameters, its request body and every response
with the schema's fields and a JSON example (a JSON Lines answer, one
example line per item); the schemas are listed once at
the end, each field with its type, whether it is required, and its
description. Examples are the document's own (``example``/``examples`` of a
body, a field or a parameter) and, where it has none, made from the schema by
:func:`example_of` (the type, the format, the first enum value, the field's
name), so every body has one and none can drift from the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import render_template

MAX_DEPTH = 16
"""How deep :func:`example_of` follows nested schemas (deeper ones are ``null``)."""
OPTIONAL_DEPTH = 2
"""Below this depth an example shows only the required fields of an object (a tenant config nests deep)."""
NAMED_EXAMPLES: dict[str, Any] = {
    "tenant_id": "acme-insurance",
    "conversation_id": "+15557654321",
    "operator_id": "alice",
    "lane": "support",
    "status": "waiting_human",
    "channel": "sms",
    "text": "Hi, this is Alice from Acme.",
    "error": "text must not be blank",
    "event_id": "op:reply-0001",
    "kind": "human_reply",
    "from": "2026-12-01",
    "to": "2026-12-07",
    "day": "2026-12-07",
    "api_key": "new-operator-api-key",
}
"""Examples for string fields by name, where a placeholder would not say what goes there."""
FORMATS = {"date-time": "2026-12-07T10:00:00+00:00", "date": "2026-12-07", "uri": "https://example.test/hook", "email": "dana@example.test"}
METHODS = ("get", "post", "put", "patch", "delete")
PATTERN_CANDIDATES = (
    "ACME_SECRET", "+15550001111", "acme-insurance", "alice", "rule-1", "en", "1", "a", "0" * 64, "X-Signature",
    "https://example.test/hook", "1795430158123-0", '"1"',
)
"""Strings tried, in order, for a string field with a ``pattern`` (the first that matches is the example)."""


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def example_of(schema: dict[str, Any], schemas: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A JSON example of ``schema`` (its own example first), resolving ``$ref`` in ``schemas``."""
    if depth > MAX_DEPTH:
        return None
    if "$ref" in schema:
        return example_of(schemas.get(_name(schema["$ref"]), {}), schemas, name, depth + 1)
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            variants = [v for v in schema[combinator] if v.get("type") != "null"]
            return example_of(variants[0], schemas, name, depth + 1) if variants else None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            return {
                key: example_of(sub, schemas, key, depth + 1) for key, sub in properties.items()
                if key in required or depth <= OPTIONAL_DEPTH
            }
        extra = schema.get("additionalProperties")
        return {"key": example_of(extra, schemas, "", depth + 1)} if isinstance(extra, dict) and extra else {}
    if kind == "array":
        item = example_of(schema.get("items", {}), schemas, name, depth + 1)
        return [] if item is None else [item]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if "minimum" in schema else 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") in FORMATS:
            return FORMATS[schema["format"]]
        if name.endswith("_at"):
            return FORMATS["date-time"]
        guess = NAMED_EXAMPLES.get(name, name.replace("_", " ") or "string")
        pattern = schema.get("pattern")
        if pattern:
            guess = next((c for c in (guess, *PATTERN_CANDIDATES) if _matches(pattern, c)), guess)
        return guess
    return None


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def type_of(schema: dict[str, Any]) -> tuple[str, str | None]:
    """``(type in words, the schema it names or None)`` of a field, for the field tables."""
    if "$ref" in schema:
        return _name(schema["$ref"]), _name(schema["$ref"])
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            parts = [type_of(v) for v in schema[combinator]]
            link = next((p[1] for p in parts if p[1]), None)
            return " | ".join(p[0] for p in parts), link
    if schema.get("enum"):
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"]), None
    kind = schema.get("type", "any")
    if kind == "array":
        inner, link = type_of(schema.get("items", {}))
        return f"array of {inner}", link
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
        inner, link = type_of(schema["additionalProperties"])
        return f"map of {inner}", link
    if schema.get("format"):
        return f"{kind} ({schema['format']})", None
    return str(kind), None


def fields_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a schema's field table: ``name``, ``type``, ``link``, ``required``, ``description``."""
    required = set(schema.get("required", []))
    rows = []
    for key, sub in schema.get("properties", {}).items():
        kind, link = type_of(sub)
        rows.append({"name": key, "type": kind, "link": link, "required": key in required,
                     "description": sub.get("description", "")})
    return rows


def _body(media: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = media.get("schema", {})
    kind, link = type_of(schema)
    example = media["example"] if "example" in media else example_of(schema, schemas)
    return {"type": kind, "link": link, "lines": False, "example": json.dumps(example, indent=2, ensure_ascii=False)}


def _lines(media: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A JSON Lines body (``application/x-ndjson``, its schema the lines as an array): one example item a line."""
    schema = media.get("schema", {})
    kind, link = type_of(schema.get("items", {}))
    example = media["example"] if "example" in media else example_of(schema, schemas)
    return {"type": f"lines of {kind}", "link": link, "lines": True,
            "example": "\n".join(json.dumps(item, ensure_ascii=False) for item in example)}


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of ``doc`` with its parameters, request body and responses ready to render."""
    schemas = doc.get("components", {}).get("schemas", {})
    found = []
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            request = None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                request = _body(content["application/json"], schemas)
            responses = []
            for status, answer in sorted(op["responses"].items()):
                media = answer.get("content", {})
                json_media = media.get("application/json")
                lines_media = media.get("application/x-ndjson")
                success = status.startswith("2")
                responses.append({
                    "status": status, "description": answer.get("description", ""),
                    "media": next(iter(media), None),
                    "body": _body(json_media, schemas) if json_media and success else None,
                    "lines": _lines(lines_media, schemas) if lines_media and success else None,
                    "schema": type_of(json_media["schema"]) if json_media else None,
                })
            found.append({
                "id": op.get("operationId", f"{method}-{path}"), "method": method.upper(), "path": path,
                "summary": op.get("summary", ""), "tag": (op.get("tags") or ["other"])[0],
                "auth": ", ".join(next(iter(s)) for s in op.get("security", [])) or "none (see the summary)",
                "parameters": [
                    {"name": p["name"], "in": p["in"], "required": p.get("required", False),
                     "type": type_of(p.get("schema", {}))[0], "description": p.get("description", ""),
                     "example": p.get("example")}
                    for p in op.get("parameters", [])
                ],
                "request": request, "responses": responses,
            })
    return found


def render_docs(doc: dict[str, Any]) -> str:
    """The docs page of ``doc`` (``templates/api_docs.html``)."""
    schemas = doc.get("components", {}).get("schemas", {})
    return render_template(
        "api_docs.html", info=doc["info"], operations=operations(doc),
        schemas=[{"name": name, "description": s.get("description", ""), "fields": fields_of(s)} for name, s in sorted(schemas.items())],
        security=doc.get("components", {}).get("securitySchemes", {}),
    )
