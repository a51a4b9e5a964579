"""Twilio's message error codes Laneway knows: what each means and what Laneway does about it.

Source: twilio.com/docs/api/errors (the ``ErrorCode`` of an ``undelivered`` or
``failed`` status callback). Pure data; :mod:`jobs.receipts` acts on
``action``, the operator API and dashboard show ``meaning``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

ErrorAction = Literal["opt_out", "unreachable", "alert", "template_retry", "none"]


class TwilioError(NamedTuple):
    meaning: str
    action: ErrorAction


TWILIO_ERRORS: dict[str, TwilioError] = {
    "21610": TwilioError("the recipient replied STOP to this number at the carrier: opted out", "opt_out"),
    "21211": TwilioError("the 'To' number is not a valid phone number", "none"),
    "21408": TwilioError("sending to this region is not enabled on the account", "none"),
    "21614": TwilioError("the 'To' number is not a mobile number", "none"),
    "30001": TwilioError("queue overflow: too many messages queued for this sender", "none"),
    "30002": TwilioError("the Twilio account is suspended", "alert"),
    "30003": TwilioError("unreachable: the handset is off or out of coverage", "unreachable"),
    "30004": TwilioError("message blocked by the recipient or their carrier", "none"),
    "30005": TwilioError("unknown destination: the number does not exist", "unreachable"),
    "30006": TwilioError("landline or unreachable carrier: the number cannot receive texts", "unreachable"),
    "30007": TwilioError("carrier filtering: the carrier flagged the message (spam/content rules)", "alert"),
    "30008": TwilioError("unknown error from the carrier", "none"),
    "63016": TwilioError(
        "WhatsApp: outside the 24-hour customer-service window; only an approved template may be sent "
        "(Laneway sends it again as the tenant's template)", "template_retry"
    ),
    # Laneway's own reason, not a Twilio code: the entry was never sent (jobs/whatsapp_window.py).
    "window_no_template": TwilioError(
        "not sent: the WhatsApp 24-hour window is closed and the tenant has no approved template for this message "
        "(add one under whatsapp.templates in the tenant config)", "none"
    ),
}
"""``ErrorCode`` → meaning and action. Codes not listed mean "see twilio.com/docs/errors/<code>" and act not."""


def error_meaning(error_code: str | None) -> str | None:
    """What Twilio's ``ErrorCode`` means (``None`` for no code)."""
    if not error_code:
        return None
    known = TWILIO_ERRORS.get(error_code)
    return known.meaning if known else f"Twilio error {error_code}: see https://www.twilio.com/docs/errors/{error_code}"


def error_action(error_code: str | None) -> ErrorAction:
    """What Laneway does about ``error_code`` (``none`` for an unknown or absent code)."""
    known = TWILIO_ERRORS.get(error_code or "")
    return known.action if known else "none"


def metric_error_code(error_code: str | None) -> str:
    """A bounded metric label: the code if listed, ``""`` for none, ``other`` otherwise."""
    if not error_code:
        return ""
    return error_code if error_code in TWILIO_ERRORS else "other"
