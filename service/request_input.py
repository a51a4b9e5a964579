"""What the tenant APIs read from a request besides their path: a strict JSON body, a date query argument.

Both answer bad input with an :class:`~service.errors.ApiError` the error
handler turns into a JSON 4xx naming what to fix.
"""

from __future__ import annotations

from datetime import date
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from service.errors import ApiError
from state.tenant_config import format_validation_error

Model = TypeVar("Model", bound=BaseModel)


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
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name} must be a date as YYYY-MM-DD, got {value[:40]!r}") from None
