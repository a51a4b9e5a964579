"""One JSON parser for request bodies that nesting cannot crash.

Python's :func:`json.loads` recurses once per nesting level and raises
:class:`RecursionError` (not :class:`ValueError`) on a body such as
``[[[[…]]]]`` 100,000 levels deep, which a handler catching ``ValueError``
turns into a 500. :func:`loads` parses with ``pydantic_core.from_json``
(jiter, the parser behind pydantic's ``model_validate_json``), which stops
at :data:`MAX_DEPTH` levels with a ``ValueError``, so every caller's
"not valid JSON" branch answers it. Endpoints that validate straight from
bytes with ``model_validate_json`` (operator, takeover and admin APIs) have
the same limit already.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import from_json

MAX_DEPTH = 200
"""Deepest nesting accepted (arrays and objects), jiter's fixed recursion limit; deeper is a ``ValueError``."""


def loads(raw: bytes | str) -> Any:
    """Return the JSON document in ``raw`` (UTF-8 bytes or text).

    Raises:
        ValueError: not JSON, not UTF-8, or nested deeper than :data:`MAX_DEPTH`
            (the message says which, with the line and column).
    """
    return from_json(raw)
