"""The operator dashboard: ``GET /dashboard`` (one page, vanilla JS and CSS served here; no CDN, no build step).

The page signs in with a tenant id, the operator's name and an operator API
key, keeps them in ``sessionStorage`` (gone when the tab closes) and calls the
takeover API (:mod:`service.takeover_api`) with ``Authorization: Bearer``; the
key never goes into a URL. The live list follows the tenant feed over
Server-Sent Events opened with a short-lived token. The page itself holds no
data: everything it shows comes from the API under the key's tenant, so a key
of tenant A shows nothing of tenant B.

Responses carry a strict Content-Security-Policy (scripts, styles and
connections from this origin only; no inline script), ``frame-ancestors
'none'`` and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint(
    "dashboard", __name__, url_prefix="/dashboard",
    template_folder="templates", static_folder="static", static_url_path="/static",
)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def security_headers(response):
    """Set the operator pages' headers (strict CSP, no referrer, no sniffing, no framing); an ``after_request`` hook."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


bp.after_request(security_headers)


@bp.get("")
@bp.get("/")
def page():
    """The dashboard page (sign-in, live list, conversation view)."""
    response = render_template("dashboard.html")
    return response, 200, {"Cache-Control": "no-store"}
