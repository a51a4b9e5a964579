"""``laneway demo``: scripted conversations with each example tenant, with lanes.

Each tenant is texted from a fresh random number (so reruns start clean)
through :class:`service.chat.Phone`. After every message the transcript is
read from the operator API (``GET /api/v1/tenants/<tenant_id>/conversations/
<From, URL-encoded>``, ``Authorization: Bearer <the tenant's first operator
key>``) and the new turns are printed with the lane that produced them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import click
import requests

from service.chat import (
    HTTP_TIMEOUT_S,
    ChatError,
    Endpoints,
    Phone,
    load_tenants,
    random_number,
    resolve_endpoints,
)
from service.runner import RUN_FILE
from state.errors import ConfigError
from state.settings import load_settings
from state.tenant_config import SecretRef, TenantConfig

SILENT_WAIT_S = 4.0
"""How long to watch for a reply that should not come, in seconds."""


@dataclass(frozen=True)
class Step:
    """One customer message and what the customer should see.

    ``expect``: ``reply`` (at least one SMS back), ``suppressed`` (opted out:
    nothing is sent), ``silent`` (a human owns the conversation: the AI says
    nothing).
    """

    text: str
    expect: Literal["reply", "suppressed", "silent"] = "reply"
    note: str = ""
    screen: tuple[dict, ...] = ()
    """Screen activity the customer's form page posts before the text (``POST /f/<token>/activity``
    bodies), as if the customer typed in the form texted to them."""


def _page_1(**fields: str) -> dict:
    values = {"first_name": "", "last_name": "", "date_of_birth": ""} | fields
    return {"screen_name": "page-1-applicant", "page": 1, "fields": values, "action": "field_change"}


SCRIPTS: dict[str, list[Step]] = {
    "acme-insurance": [
        Step("Hi, I'd like to apply for life insurance"),
        Step("Dana Whitfield"),
        Step("yes", note="the application link is texted: open it in a browser to follow along"),
        Step(
            "ok I typed my name, what's next?",
            screen=({**_page_1(), "action": "load"}, _page_1(first_name="Dana", last_name="Whitfield")),
            note="the form shows Dana Whitfield; the guide reads it back and highlights the date of birth",
        ),
        Step(
            "I fixed my first name",
            screen=(_page_1(first_name="Dina", last_name="Whitfield", date_of_birth="1990-04-01"),),
            note="a correction is noticed; the date itself is never read back",
        ),
        Step("What are your opening hours?"),
        Step("HELP"),
        Step("STOP"),
        Step("hello?", expect="suppressed"),
        Step("START"),
        Step("can I talk to a human please"),
    ],
    "bright-clinic": [
        Step("Where can I park?"),
        Step("Do you take Aetna insurance?"),
        Step("HELP"),
        Step("representative please"),
        Step("are you there?", expect="silent"),
    ],
}


def operator_key(tenant: TenantConfig, environment: str) -> str:
    """Return the tenant's first operator API key in clear.

    Raises:
        ChatError: the tenant lists no key given by environment variable.
    """
    for key in tenant.operator_api_keys:
        if isinstance(key, SecretRef):
            try:
                return key.resolve(environment)
            except ConfigError as exc:
                raise ChatError(f"tenant {tenant.tenant_id}: {exc}") from exc
    raise ChatError(f"tenant {tenant.tenant_id} has no operator API key the demo can use")


def fetch_conversation(web_url: str, tenant_id: str, conversation_id: str, api_key: str) -> dict | None:
    """Return the operator API's view of a conversation, or ``None`` if it does not exist (404).

    Shape (from the operator API): ``{"lane", "status", "opted_out", "slots",
    "turns": [{"direction", "text", "at", "lane", "delivery"?}], …}``.

    Raises:
        ChatError: unreachable, or any answer but 200/404.
    """
    url = f"{web_url}/api/v1/tenants/{tenant_id}/conversations/{quote(conversation_id, safe='')}"
    try:
        answer = requests.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise ChatError(f"cannot reach the operator API at {web_url}: {exc}") from exc
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise ChatError(f"operator API answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def play(phone: Phone, steps: list[Step], api_key: str, echo=click.echo) -> int:
    """Play ``steps`` on ``phone`` and print the transcript. Returns the number of problems.

    A problem is an expected reply that never came. A reply where none was
    expected is printed as a warning only.

    Raises:
        ChatError: the service or the stand-in stopped answering.
    """
    tenant = phone.tenant
    problems = 0
    shown = 0
    form_link: str | None = None
    for step in steps:
        if step.screen:
            if form_link is None:
                raise ChatError("the script types in the form, but no form link was texted")
            for activity in step.screen:
                post_activity(phone.endpoints.web_url, form_link, activity)
        phone.send(step.text)
        if step.expect == "reply":
            replies = phone.wait_for_replies()
        else:
            replies = phone.wait_for_replies(max_wait_s=SILENT_WAIT_S)
        conversation = fetch_conversation(phone.endpoints.web_url, tenant.tenant_id, phone.from_number, api_key) or {}
        turns = conversation.get("turns", [])
        for turn in turns[shown:]:
            echo(format_turn(turn))
        shown = len(turns)
        for reply in replies:
            found = FORM_LINK.search(reply.body or "")
            if found and form_link is None:
                form_link = found.group(0)
                echo(f"    (open {phone.endpoints.web_url}/f/{found.group('token')} in a browser to watch the form)")
        if step.note:
            echo(f"    ({step.note})")
        if step.expect == "reply" and not replies:
            problems += 1
            echo(f"    !! no SMS reached the phone within the wait for {step.text!r}")
        elif step.expect == "suppressed" and not replies:
            echo("    (suppressed: the customer texted STOP, so nothing was sent to the phone)")
        elif step.expect == "silent" and not replies:
            echo("    (AI silent: a person from the team owns this conversation now)")
        elif step.expect != "reply":
            echo(f"    !! expected no SMS ({step.expect}) but the phone received {len(replies)}")
    echo(
        f"  => lane={conversation.get('lane')} status={conversation.get('status')} "
        f"opted_out={conversation.get('opted_out')} slots={conversation.get('slots')}"
    )
    return problems


FORM_LINK = re.compile(r"https?://\S+/f/(?P<token>[A-Za-z0-9_-]{10,64})")


def post_activity(web_url: str, form_link: str, activity: dict) -> None:
    """Post screen activity for the form of ``form_link``, exactly as the form page does.

    Raises:
        ChatError: unreachable, or the service refused the activity.
    """
    token = FORM_LINK.search(form_link).group("token")
    try:
        answer = requests.post(f"{web_url}/f/{token}/activity", json=activity, timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise ChatError(f"cannot reach the hosted form at {web_url}: {exc}") from exc
    if answer.status_code != 201:
        raise ChatError(f"the hosted form refused the activity: {answer.status_code} {answer.text[:300]}")


def format_turn(turn: dict) -> str:
    """Return one transcript line: ``customer> …`` or ``  [lane] agent> … (delivery)``."""
    text = " ".join(str(turn.get("text", "")).split())
    if turn.get("direction") == "inbound":
        return f"  customer> {text}"
    delivery = turn.get("delivery")
    suffix = f"  ({delivery})" if delivery and delivery != "sent" else ""
    return f"    [{turn.get('lane') or '-'}] {turn.get('author') or 'agent'}> {text}{suffix}"


@click.command("demo")
@click.option("--url", help="Laneway's web URL [default: the run file's, else http://127.0.0.1:$PORT].")
@click.option("--tenants", "tenants_file", help="Tenants YAML [default: the run file's, tenants.example.yaml].")
@click.option("--twilio-api-url", help="Twilio stand-in URL [default: LANEWAY_TWILIO_API_URL, else the run file's].")
@click.option("--run-file", default=RUN_FILE, show_default=True, help="Run file written by `laneway run`.")
def demo_command(url: str | None, tenants_file: str | None, twilio_api_url: str | None, run_file: str) -> None:
    """Play a scripted conversation with each example tenant and print it with lanes.

    Exits non-zero if the service does not answer.
    """
    settings = load_settings()
    endpoints: Endpoints = resolve_endpoints(
        settings, run_file=run_file, url=url, twilio_api_url=twilio_api_url, tenants_file=tenants_file
    )
    tenants = {t.tenant_id: t for t in load_tenants(endpoints.tenants_file)}
    numbers = {n for t in tenants.values() for n in t.phone_numbers}
    problems = 0
    played = 0
    for tenant_id, steps in SCRIPTS.items():
        tenant = tenants.get(tenant_id)
        if tenant is None:
            click.echo(f"(skipping {tenant_id}: not in {endpoints.tenants_file})")
            continue
        customer = random_number(exclude=numbers)
        to_number = tenant.phone_numbers[0]
        click.echo(f"\n=== {tenant.display_name} ({tenant_id}) at {to_number}, customer {customer} ===")
        try:
            phone = Phone(tenant, to_number, customer, endpoints, settings.env)
        except ConfigError as exc:
            raise ChatError(f"tenant {tenant_id}: {exc}") from exc
        problems += play(phone, steps, operator_key(tenant, settings.env))
        played += 1
    if not played:
        raise ChatError("no example tenant found to play")
    if problems:
        raise ChatError(f"demo finished with {problems} missing replies")
    click.echo("\ndemo finished: every expected reply arrived")
