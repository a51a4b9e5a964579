"""What ``getScreenState`` reads out: the customer's screen, with sensitive values withheld.

Pure: from the tenant's form definition and the :class:`state.forms.ScreenState`
the form page last reported, to the camelCase object the voice agent reads.
"""

from __future__ import annotations

from typing import Any

from state.forms import ScreenState
from state.tenant_config import TenantConfig


def _field_view(definition, field_id: str, value: str | None) -> dict[str, Any]:
    """One field as the assistant reads it; a sensitive field's value is ``""`` with ``withheld: true``."""
    field = definition.fields().get(field_id) if definition else None
    view = {"fieldId": field_id, "label": field.label if field else field_id, "value": value or "", "filled": bool(value)}
    if _withheld(definition, field_id) and value:
        view.update(value="", withheld=True)
    return view


def _withheld(definition, field_id: str) -> bool:
    """Whether a field's value is never read out (:attr:`FormField.is_sensitive`; a field not on the form is)."""
    field = definition.fields().get(field_id) if definition else None
    return field is None or field.is_sensitive


def screen_view(tenant: TenantConfig, state: ScreenState | None) -> dict[str, Any]:
    """The camelCase screen state the voice agent reads, with a speakable summary in ``message``.

    Empty values are ``""`` with ``filled: false`` (never ``null``: a model
    reads that out as "none" or "unknown", which the seeds ban). Values of
    sensitive fields (:attr:`state.form_definition.FormField.is_sensitive`:
    by default everything but select, radio and checkbox answers; fields not
    on the form) are withheld everywhere in the answer: ``value`` is ``""``
    with ``withheld: true``, they are left out of ``allValues``, a change
    says only that the field changed, and ``message`` says "(filled in)".
    Whoever holds the phone can type into the form; what they hear of it
    over a call whose caller id can be forged is only what is safe to say.
    """
    definition = tenant.form
    if state is None:
        return {
            "success": True, "opened": False, "pageNumber": 0, "fields": [], "changedFields": [], "submitted": False,
            "message": "They haven't opened the link yet. Ask whether the text arrived, and offer to send it again.",
        }
    page = definition.page(state.page_number) if definition else None
    page_ids = [f.id for f in page.fields] if page else list(state.fields)
    fields = [_field_view(definition, i, state.fields.get(i)) for i in page_ids]
    changed = []
    for c in state.changed_fields:
        view = _field_view(definition, c.field_id, c.to)
        hidden = _withheld(definition, c.field_id)
        changed.append({**view, "from": "" if hidden else c.from_ or "", "to": "" if hidden else c.to or ""})
    next_field = next((f for f in fields if not f["filled"]), None)
    if state.submitted:
        message = "They've submitted the application."
    else:
        where = f"page {state.page_number} of {state.page_count}" if state.page_number and state.page_count else "the form"
        if state.page_title:
            where += f", {state.page_title}"
        filled = "; ".join(
            f"{f['label']} (filled in)" if f.get("withheld") else f"{f['label']}: {f['value']}" for f in fields if f["filled"]
        )
        message = f"They're on {where}." + (f" Filled in: {filled}." if filled else "")
        for c in changed:
            if c["from"] and c["to"]:
                message += f" They changed {c['label']} from {c['from']} to {c['to']}."
            elif c.get("withheld"):
                message += f" They changed {c['label']}."
        message += f" Next: {next_field['label']}." if next_field else " Everything on this page is filled in."
    return {
        "success": True,
        "opened": True,
        "screenName": state.screen_name,
        "pageNumber": state.page_number or 0,
        "pageCount": state.page_count or 0,
        "pageId": state.page_id or "",
        "pageTitle": state.page_title or "",
        "fields": fields,
        "allValues": {k: v for k, v in state.fields.items() if v and not _withheld(definition, k)},
        "changedFields": changed,
        "nextField": next_field,
        "lastAction": state.last_action,
        "secondsSinceUpdate": state.seconds_since_update,
        "isFresh": state.is_fresh,
        "submitted": state.submitted,
        "message": message,
    }
