"""What the tenant APIs read from a request besides their path: a strict JSON body, a date query argument, a range of days.

Both answer bad input with an :class:`~service.errors.ApiError` the error
handler turns into a JSON 4xx naming what to fix.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from service.errors import ApiError
from state.tenant_config import format_validation_error

Model = TypeVar("Model", bound=BaseModel)
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def json_model(model: type[Model]) -> Model:
    """The request's JSON body validated as ``model``, strictly (no coercion: ``"disabled": 0`` is refused,
    so the body must match the published JSON Schema).

    Raises:
        ApiError: 415 for another content type; 400 naming each bad field (at most ten).
    """
    if request.mimetype != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    try:
        return model.model_validate_json(request.get_data(), strict=True)
    except ValidationError as exc:
        raise ApiError(400, f"invalid {model.__name__}: " + "; ".join(format_validation_error(exc)[:10])) from exc


def day_arg(name: str, default: date) -> date:
    """The query argument ``name`` as a calendar day (``YYYY-MM-DD``), ``default`` when absent.

    Raises:
        ApiError: 400 when it is not a date.
    """
    value = request.args.get(name)
    if value is None:
        return default
    try:
        if not DAY.fullmatch(value):  # fromisoformat also takes 20261207 and 2026-W49-1
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}") from None


def day_range(today: date, default_days: int, max_days: int) -> tuple[date, date]:
    """The query's ``from`` and ``to`` days, inclusive: ``to`` defaults to ``today``, ``from`` to
    ``default_days`` days ending at ``to``.

    Raises:
        ApiError: 400 for a bad date, ``from`` after ``to``, a range of more than
            ``max_days`` days, or a ``to`` too early for the default ``from`` (year 1).
    """
    last = day_arg("to", today)
    if "from" in request.args:
        first = day_arg("from", last)
    else:
        try:
            first = last - timedelta(days=default_days - 1)
        except OverflowError:
            raise ApiError(400, "to is too early a date for the default from; send from as well") from None
    if first > last:
        raise ApiError(400, "from must not be after to")
    if (last - first).days + 1 > max_days:
        raise ApiError(400, f"at most {max_days} days per request")
    return first, last
