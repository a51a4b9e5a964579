"""Structured logs: one JSON object per line, for every logger in the process.

:func:`configure_logging` routes the standard library's logging (Laneway's
modules, RQ, gunicorn, werkzeug) through ``structlog``'s ``ProcessorFormatter``:
each line carries ``timestamp`` (ISO-8601 UTC), ``level``, ``logger``,
``event`` and whatever context is bound for the current request or job with
:func:`bind` (``request_id``, ``tenant_id``, ``conversation``, ``turn_id``,
``message_sid``, ``job_id``). Context lives in ``contextvars``, so threads
and requests do not mix.

E.164 phone numbers are masked to ``***`` and their last 4 digits in every
line (the event, its fields and any traceback), whatever logged them;
Laneway's own code logs masked ids and never message bodies at INFO and above.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.contextvars import (
    bind_contextvars,
    clear_contextvars,
    get_contextvars,
    merge_contextvars,
)

_PHONE = re.compile(r"\+\d{7,15}(?!\d)")
"""An E.164 number, as Twilio writes them (``+15557654321``, also inside ``whatsapp:+1…``)."""

LOG_FORMATS = ("json", "text")


def mask_numbers(text: str) -> str:
    """Replace every E.164 phone number in ``text`` with ``***`` and its last 4 digits."""
    return _PHONE.sub(lambda m: "***" + m.group()[-4:], text)


def _mask(_, __, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = mask_numbers(value)
    return event_dict


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """Send every logger's records to stderr as JSON lines (or readable text), masked.

    Idempotent: replaces the root logger's handlers.
    """
    shared = [
        merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer = structlog.processors.JSONRenderer() if log_format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _mask,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def bind(**context: Any) -> None:
    """Add ``context`` (``request_id``, ``tenant_id``, …) to every line this request or job logs."""
    bind_contextvars(**{k: v for k, v in context.items() if v is not None})


def current(name: str) -> Any:
    """The value bound under ``name`` for this request or job, or ``None``."""
    return get_contextvars().get(name)


def clear() -> None:
    """Forget the bound context (at the start of each request and job)."""
    clear_contextvars()
