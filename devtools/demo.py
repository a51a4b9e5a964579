"""``laneway demo``: scripted conversations with each example tenant, with lanes.

Each tenant is texted from a fresh random number (so reruns start clean)
through :class:`devtools.chat.Phone`. After every message the transcript is
read from the operator API (``GET /api/v1/tenants/<tenant_id>/conversations/
<From, URL-encoded>``, ``Authorization: Bearer <the tenant's first operator
key>``) and the new turns are printed with the lane that produced them.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import click
import requests

from core.settings import load_settings
from devtools.chat import (
    HTTP_TIMEOUT_S,
    ChatError,
    Endpoints,
    Phone,
    load_tenants,
    random_number,
    resolve_endpoints,
)
from devtools.runner import RUN_FILE
from state.errors import ConfigError
from state.tenant_config import SecretRef, TenantConfig

SILENT_WAIT_S = 4.0
"""How long to watch for a reply that should not come, in seconds."""
ATTENTION_WAIT_S = 30.0
"""How long to wait for a trigger to flag the conversation (the trigger sweep runs every few seconds)."""
DEMO_OPERATOR = "ana"
"""The operator name the demo acts as (``X-Operator``)."""


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
    operator_reply: str = ""
    """Instead of the customer texting: wait until the conversation needs attention (after
    ``screen`` tripped a trigger), then an operator claims it, replies this, and hands back."""


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
        Step(
            "",
            screen=tuple(
                _page_1(first_name="Dina", last_name="Whitfield", date_of_birth=d)
                for d in ("1990-14-01", "1990-01-41", "1990-04-01")
            ),
            operator_reply="Hi Dina, this is Ana at Acme. I see the date of birth is giving you trouble: "
                           "use the calendar button in that field. I'm handing you back to Ava.",
            note="the date changed 3 times in a minute: the field-trouble trigger highlights it, texts a "
                 "nudge and alerts the dashboard; an operator takes over, replies, and hands back to the AI",
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
        if step.operator_reply:
            problems += take_over(phone, api_key, step.operator_reply, echo)
            show_form_commands(phone.endpoints.web_url, form_link, echo)
            replies = phone.wait_for_replies()
            shown = _show_new_turns(phone, api_key, shown, echo)
            if step.note:
                echo(f"    ({step.note})")
            if not replies:
                problems += 1
                echo("    !! the operator's reply did not reach the phone")
            continue
        phone.send(step.text)
        if step.expect == "reply":
            replies = phone.wait_for_replies()
        else:
            replies = phone.wait_for_replies(max_wait_s=SILENT_WAIT_S)
        shown = _show_new_turns(phone, api_key, shown, echo)
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
    conversation = fetch_conversation(phone.endpoints.web_url, tenant.tenant_id, phone.from_number, api_key) or {}
    echo(
        f"  => lane={conversation.get('lane')} status={conversation.get('status')} "
        f"opted_out={conversation.get('opted_out')} slots={conversation.get('slots')}"
    )
    return problems


def _show_new_turns(phone: Phone, api_key: str, shown: int, echo) -> int:
    """Print the transcript entries after the first ``shown``; return how many there are now."""
    conversation = fetch_conversation(phone.endpoints.web_url, phone.tenant.tenant_id, phone.from_number, api_key) or {}
    turns = conversation.get("turns", [])
    for turn in turns[shown:]:
        echo(format_turn(turn))
    return len(turns)


def _operator_api(method: str, url: str, api_key: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {api_key}", "X-Operator": DEMO_OPERATOR}
    try:
        return requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)
    except requests.RequestException as exc:
        raise ChatError(f"cannot reach the operator API: {exc}") from exc


def take_over(phone: Phone, api_key: str, reply: str, echo=click.echo) -> int:
    """Wait until the conversation needs attention, then claim it, reply as :data:`DEMO_OPERATOR` and hand back.

    Uses the takeover API as the dashboard does. Returns the number of problems
    (the alert never came, or a call was refused).
    """
    tenant_id = phone.tenant.tenant_id
    base = f"{phone.endpoints.web_url}/api/v1/tenants/{tenant_id}/conversations"
    conversation = f"{base}/{quote(phone.from_number, safe='')}"
    deadline = time.monotonic() + ATTENTION_WAIT_S
    summary = None
    while summary is None and time.monotonic() < deadline:
        listed = _operator_api("GET", base, api_key, params={"needs_attention": "true"})
        if listed.status_code != 200:
            raise ChatError(f"listing conversations answered {listed.status_code}: {listed.text[:300]}")
        summary = next((c for c in listed.json()["conversations"] if c["conversation_id"] == phone.from_number), None)
        if summary is None:
            time.sleep(0.5)
    if summary is None:
        echo(f"    !! no trigger fired within {ATTENTION_WAIT_S:.0f} s (is a worker running?)")
        return 1
    alert = summary.get("alert") or {}
    echo(f"    (dashboard: needs attention ({', '.join(summary['attention_reasons'])}); "
         f"trigger {alert.get('rule_id')} fired with priority {alert.get('priority')})")
    for method, path, body in (("POST", "/claim", None), ("POST", "/reply", {"text": reply}), ("POST", "/handback", None)):
        answer = _operator_api(method, conversation + path, api_key, json=body)
        if answer.status_code not in (200, 202):
            echo(f"    !! {path[1:]} answered {answer.status_code}: {answer.text[:200]}")
            return 1
        echo(f"    (operator {DEMO_OPERATOR}: {path[1:]})")
    return 0


def show_form_commands(web_url: str, form_link: str | None, echo=click.echo) -> None:
    """Print the commands waiting for the form page (what a browser on the link shows next; not acknowledged)."""
    if form_link is None:
        return
    token = FORM_LINK.search(form_link).group("token")
    try:
        answer = requests.get(f"{web_url}/f/{token}/commands", timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise ChatError(f"cannot reach the hosted form at {web_url}: {exc}") from exc
    for command in answer.json().get("commands", []) if answer.status_code == 200 else []:
        echo(f"    (form page: {command.get('action')} {command.get('field_id')} \"{command.get('label')}\")")


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
    suffix = f"  ({delivery})" if delivery and delivery not in ("sent", "delivered", "read") else ""
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
