"""``laneway chat``: be the customer's phone, against a running Laneway (texts, or a call with ``--voice``).

Each line typed becomes the form Twilio posts for an inbound SMS (Twilio
Messaging webhook parameters: ``MessageSid``, ``AccountSid``, ``From``, ``To``,
``Body``, ``NumMedia``, ``NumSegments``, ``SmsStatus``, ``ApiVersion``), signed
exactly as Twilio signs it (``X-Twilio-Signature``: HMAC-SHA1 of the public URL
plus the sorted parameters, with the tenant's auth token). Replies are read
back from the Twilio stand-in through the official client
(``client.messages.list``), as Laneway's delivery jobs sent them.

:class:`Phone` is the reusable part; ``laneway demo`` and the stack test use it.

With ``--voice`` each line is something the caller says instead: :class:`Call`
plays a phone call through the Twilio Voice webhooks as Twilio would (the
greeting ``POST /twilio/voice``; each line as ``SpeechResult`` to the
``<Gather>``'s action; ``<Redirect>``s followed, so a held answer is polled;
an empty line is a silence; the end of input posts the final ``CallStatus``
to ``/twilio/voice/status``), every request signed like Twilio's
(``X-Twilio-Signature`` over the public URL, path and query included). What
the caller hears (``<Say>``) is printed, and so are texts the call sent to
the caller's phone (the form link).
"""

from __future__ import annotations

import secrets
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import click
import requests
from twilio.request_validator import RequestValidator

from core.settings import Settings, load_settings
from devtools.runner import EXAMPLE_TENANTS, RUN_FILE, read_run_file
from jobs.twilio_http import make_twilio_client
from state.errors import ConfigError
from state.tenant_config import TenantConfig, parse_tenants_yaml

WEBHOOK_PATH = "/twilio/messaging"
QUIET_S = 1.5
"""Seconds without a new reply, after at least one, that end a wait for replies."""
MAX_WAIT_S = 10.0
"""Longest wait for replies to one message, in seconds."""
POLL_S = 0.25
HTTP_TIMEOUT_S = 10.0


class ChatError(click.ClickException):
    """The service or the stand-in could not be reached, or refused a message."""


@dataclass(frozen=True)
class Endpoints:
    """Where a running Laneway lives.

    Attributes:
        web_url: where to POST webhooks (``http://127.0.0.1:8000``).
        public_base_url: the URL Laneway checks signatures against.
        twilio_api_url: the Twilio stand-in's base URL.
        tenants_file: the tenants YAML the service loaded.
    """

    web_url: str
    public_base_url: str
    twilio_api_url: str
    tenants_file: str


def resolve_endpoints(
    settings: Settings,
    *,
    run_file: str | Path = RUN_FILE,
    url: str | None = None,
    twilio_api_url: str | None = None,
    tenants_file: str | None = None,
) -> Endpoints:
    """Combine options, environment (``settings``) and the run file, in that order of precedence.

    The public base URL is ``LANEWAY_PUBLIC_BASE_URL``, else the run file's,
    else the web URL.

    Raises:
        ChatError: no Twilio stand-in URL is known.
    """
    run = read_run_file(run_file) or {}
    web_url = (url or run.get("web_url") or f"http://127.0.0.1:{settings.port}").rstrip("/")
    public = (settings.public_base_url or run.get("public_base_url") or web_url).rstrip("/")
    api_url = twilio_api_url or settings.twilio_api_url or run.get("standin_url")
    if not api_url:
        raise ChatError(
            "no Twilio stand-in URL: start `laneway run` (it writes "
            f"{run_file}), or pass --twilio-api-url / set LANEWAY_TWILIO_API_URL"
        )
    tenants = tenants_file or settings.tenants_file or run.get("tenants_file") or EXAMPLE_TENANTS
    return Endpoints(web_url, public, api_url.rstrip("/"), tenants)


def load_tenants(path: str) -> list[TenantConfig]:
    """Parse the tenants YAML at ``path``.

    Raises:
        ChatError: the file cannot be read or is invalid.
    """
    try:
        return parse_tenants_yaml(Path(path).read_text(encoding="utf-8")).tenants
    except OSError as exc:
        raise ChatError(f"cannot read tenants file {path}: {exc.strerror}") from exc
    except ConfigError as exc:
        raise ChatError(f"{path}: {exc}") from exc


def tenant_for_number(tenants: list[TenantConfig], number: str) -> TenantConfig:
    """Return the tenant owning ``number`` (E.164).

    Raises:
        ChatError: no tenant owns it.
    """
    for tenant in tenants:
        if number in tenant.phone_numbers:
            return tenant
    owned = ", ".join(n for t in tenants for n in t.phone_numbers)
    raise ChatError(f"no tenant owns {number} (numbers: {owned})")


def new_message_sid() -> str:
    """Return a Twilio-style message SID: ``SM`` + 32 hex digits."""
    return "SM" + secrets.token_hex(16)


def random_number(exclude: set[str] = frozenset()) -> str:
    """Return a random ``+1555…`` E.164 number not in ``exclude`` (a fresh customer)."""
    while True:
        number = f"+1555{secrets.randbelow(10**7):07d}"
        if number not in exclude:
            return number


def inbound_form(*, account_sid: str, from_number: str, to_number: str, body: str, message_sid: str | None = None) -> dict[str, str]:
    """Return the form Twilio posts to the messaging webhook for an inbound SMS.

    ``MessagingServiceSid`` is omitted (the number is not in a Messaging Service).
    """
    sid = message_sid or new_message_sid()
    return {
        "MessageSid": sid,
        "SmsMessageSid": sid,  # legacy duplicates Twilio still sends
        "SmsSid": sid,
        "AccountSid": account_sid,
        "From": from_number,
        "To": to_number,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def post_signed(web_url: str, public_base_url: str, auth_token: str, form: dict[str, str]) -> requests.Response:
    """POST ``form`` to ``web_url`` + ``/twilio/messaging``, signed for ``public_base_url`` + the same path.

    Returns:
        The response (2xx).

    Raises:
        ChatError: the service is unreachable or did not answer 2xx.
    """
    signature = RequestValidator(auth_token).compute_signature(public_base_url + WEBHOOK_PATH, form)
    try:
        answer = requests.post(
            web_url + WEBHOOK_PATH, data=form, headers={"X-Twilio-Signature": signature}, timeout=HTTP_TIMEOUT_S
        )
    except requests.RequestException as exc:
        raise ChatError(f"cannot reach Laneway at {web_url}: {exc}") from exc
    if not answer.ok:
        raise ChatError(f"{web_url}{WEBHOOK_PATH} answered {answer.status_code}: {answer.text[:300]}")
    return answer


class Phone:
    """A customer's phone texting one tenant number of a running Laneway.

    Args:
        tenant: the tenant owning ``to_number``; its Twilio credentials sign
            webhooks and read replies.
        to_number: the tenant's number (E.164).
        from_number: the customer's number (E.164).
        endpoints: where the service and the stand-in are.
        environment: ``settings.env``, for resolving secrets.
    """

    def __init__(self, tenant: TenantConfig, to_number: str, from_number: str, endpoints: Endpoints, environment: str) -> None:
        self.tenant = tenant
        self.to_number = to_number
        self.from_number = from_number
        self.endpoints = endpoints
        self.account_sid = tenant.twilio.account_sid.resolve(environment)
        self.auth_token = tenant.twilio.auth_token.resolve(environment)
        self.client = make_twilio_client(self.account_sid, self.auth_token, endpoints.twilio_api_url, HTTP_TIMEOUT_S)
        self.seen: set[str] = {m.sid for m in self._list()}
        """SIDs of replies already returned (or present before this phone started)."""

    def _list(self) -> list:
        try:
            return self.client.messages.list(to=self.from_number, from_=self.to_number)
        except requests.RequestException as exc:
            raise ChatError(f"cannot reach the Twilio stand-in at {self.endpoints.twilio_api_url}: {exc}") from exc

    def send(self, body: str) -> str:
        """Text ``body`` to the tenant (a signed webhook POST). Returns its ``MessageSid``.

        Raises:
            ChatError: the service is unreachable or refused the message.
        """
        form = inbound_form(account_sid=self.account_sid, from_number=self.from_number, to_number=self.to_number, body=body)
        post_signed(self.endpoints.web_url, self.endpoints.public_base_url, self.auth_token, form)
        return form["MessageSid"]

    def new_replies(self) -> list:
        """Return replies not returned before, oldest first (twilio ``MessageInstance``s)."""
        fresh = [m for m in self._list() if m.sid not in self.seen]
        self.seen.update(m.sid for m in fresh)
        return list(reversed(fresh))  # the API lists newest first

    def wait_for_replies(self, *, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S, on_reply=None) -> list:
        """Collect replies until quiet for ``quiet_s`` after at least one, or ``max_wait_s`` in all.

        Args:
            on_reply: optional callable given each reply as it arrives.

        Returns:
            The replies, oldest first (empty if none came within ``max_wait_s``).
        """
        replies: list = []
        started = last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - started >= max_wait_s or (replies and now - last >= quiet_s):
                return replies
            fresh = self.new_replies()
            if fresh:
                last = time.monotonic()
                replies += fresh
                for reply in fresh:
                    if on_reply is not None:
                        on_reply(reply)
            time.sleep(POLL_S)


VOICE_PATH = "/twilio/voice"
VOICE_TEXT_WAIT_S = 1.0
"""How long after each spoken answer ``chat --voice`` looks for a text the call sent (seconds)."""
MAX_REDIRECTS = 10
"""Most ``<Redirect>``s followed for one utterance (the service polls at most a few times)."""


def new_call_sid() -> str:
    """Return a Twilio-style call SID: ``CA`` + 32 hex digits."""
    return "CA" + secrets.token_hex(16)


@dataclass
class Heard:
    """What the caller heard after saying something: the ``<Say>`` texts, and whether the call was hung up."""

    said: list[str] = field(default_factory=list)
    hung_up: bool = False


class Call:
    """A phone call from ``from_number`` to a tenant number of a running Laneway, through the Twilio Voice webhooks.

    Args:
        tenant: the tenant owning ``to_number`` (its auth token signs the webhooks).
        to_number: the tenant's number (E.164).
        from_number: the caller's number (E.164).
        endpoints: where the service is.
        environment: ``settings.env``, for resolving secrets.

    Contract followed: Twilio's Voice request parameters (``CallSid``,
    ``AccountSid``, ``From``, ``To``, ``CallStatus``, ``Direction``,
    ``ApiVersion``; ``SpeechResult`` and ``Confidence`` from ``<Gather
    input="speech">``; ``CallDuration`` on the status callback) and its
    resolution of relative TwiML URLs against the requested URL.
    """

    def __init__(self, tenant: TenantConfig, to_number: str, from_number: str, endpoints: Endpoints, environment: str) -> None:
        self.tenant = tenant
        self.to_number = to_number
        self.from_number = from_number
        self.endpoints = endpoints
        self.account_sid = tenant.twilio.account_sid.resolve(environment)
        self.auth_token = tenant.twilio.auth_token.resolve(environment)
        self.call_sid = new_call_sid()
        self.started_at = time.monotonic()
        self.listen_url: str | None = None
        """The ``<Gather>`` action of the last answer: where the next utterance goes."""
        self.silence_url: str | None = None
        """The ``<Redirect>`` after that ``<Gather>``: what Twilio posts when the caller says nothing."""
        self.ended = False

    def _params(self, **extra: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.from_number, "To": self.to_number,
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra,
        }  # fmt: skip

    def _post(self, path: str, form: dict[str, str]) -> requests.Response:
        """POST ``form`` to ``path`` (query included), signed for the public URL of the same path.

        Raises:
            ChatError: unreachable, or an answer other than 2xx.
        """
        signature = RequestValidator(self.auth_token).compute_signature(self.endpoints.public_base_url + path, form)
        try:
            answer = requests.post(
                self.endpoints.web_url + path, data=form, headers={"X-Twilio-Signature": signature}, timeout=HTTP_TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise ChatError(f"cannot reach Laneway at {self.endpoints.web_url}: {exc}") from exc
        if not answer.ok:
            raise ChatError(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        return answer

    def _follow(self, answer: requests.Response, form: dict[str, str]) -> Heard:
        """Read a TwiML answer: collect ``<Say>``; stop at a ``<Gather>`` (remember its action) or ``<Hangup>``;
        follow a bare ``<Redirect>`` (a held answer) with the call's parameters."""
        heard = Heard()
        for _ in range(MAX_REDIRECTS):
            root = ET.fromstring(answer.content)
            heard.said += [say.text or "" for say in root.iter("Say")]
            gather = root.find("Gather")
            redirect = root.find("Redirect")
            if root.find("Hangup") is not None:
                heard.hung_up = self.ended = True
                return heard
            if gather is not None:
                self.listen_url = gather.get("action")
                self.silence_url = redirect.text if redirect is not None else None
                return heard
            if redirect is None or not redirect.text:
                heard.hung_up = self.ended = True  # nothing more to do: Twilio ends the call
                return heard
            answer = self._post(redirect.text, form)
        raise ChatError(f"more than {MAX_REDIRECTS} redirects without a question")

    def dial(self) -> Heard:
        """Place the call (the number's "A call comes in" webhook); return the greeting."""
        form = self._params()
        return self._follow(self._post(VOICE_PATH, form), form)

    def say(self, speech: str) -> Heard:
        """Say ``speech`` (Twilio's ``SpeechResult``); return what the caller hears next.

        Raises:
            ChatError: the call has ended, or the service did not answer.
        """
        if self.ended or not self.listen_url:
            raise ChatError("the call has ended")
        form = self._params(SpeechResult=speech, Confidence="0.92")
        return self._follow(self._post(self.listen_url, form), form)

    def stay_silent(self) -> Heard:
        """Say nothing until the ``<Gather>`` times out (Twilio then follows the ``<Redirect>``)."""
        if self.ended or not self.silence_url:
            raise ChatError("the call has ended")
        form = self._params()
        return self._follow(self._post(self.silence_url, form), form)

    def hang_up(self) -> None:
        """End the call: the final status callback (``completed`` with ``CallDuration``), as Twilio sends it."""
        duration = str(max(1, round(time.monotonic() - self.started_at)))
        self._post(f"{VOICE_PATH}/status", self._params(CallStatus="completed", CallDuration=duration))
        self.ended = True


def open_phone(settings: Settings, endpoints: Endpoints, to_number: str, from_number: str) -> Phone:
    """Return a :class:`Phone` for the tenant owning ``to_number`` in ``endpoints.tenants_file``.

    Raises:
        ChatError: unknown number, unreadable tenants file, or a missing secret.
    """
    tenant = tenant_for_number(load_tenants(endpoints.tenants_file), to_number)
    try:
        return Phone(tenant, to_number, from_number, endpoints, settings.env)
    except ConfigError as exc:
        raise ChatError(f"tenant {tenant.tenant_id}: {exc}") from exc


@click.command("chat")
@click.option("--voice", is_flag=True, help="Call instead of texting: each line is something you say (an empty line is a silence).")
@click.option("--to", "to_number", required=True, help="The tenant's number (E.164), e.g. +15550001111.")
@click.option("--from", "from_number", required=True, help="Your (the customer's) number, e.g. +15557654321.")
@click.option("--url", help="Laneway's web URL [default: the run file's, else http://127.0.0.1:$PORT].")
@click.option("--tenants", "tenants_file", help="Tenants YAML [default: LANEWAY_TENANTS_FILE, the run file's, tenants.example.yaml].")
@click.option("--twilio-api-url", help="Twilio stand-in URL [default: LANEWAY_TWILIO_API_URL, else the run file's].")
@click.option("--run-file", default=RUN_FILE, show_default=True, help="Run file written by `laneway run`.")
def chat_command(
    voice: bool, to_number: str, from_number: str, url: str | None, tenants_file: str | None, twilio_api_url: str | None,
    run_file: str,
) -> None:
    """Text a running Laneway as a customer would: one SMS per line of input (with --voice: call it)."""
    settings = load_settings()
    endpoints = resolve_endpoints(settings, run_file=run_file, url=url, twilio_api_url=twilio_api_url, tenants_file=tenants_file)
    phone = open_phone(settings, endpoints, to_number, from_number)
    interactive = sys.stdin.isatty()
    if voice:
        _call(phone, settings.env, interactive)
        return
    name = phone.tenant.display_name
    if interactive:
        click.echo(f"Texting {name} ({to_number}) as {from_number} via {endpoints.web_url}. Ctrl-D ends.")
    for line in _input_lines(interactive):
        body = line.strip()
        if not body:
            continue
        if not interactive:
            click.echo(f"you> {body}")
        phone.send(body)
        replies = phone.wait_for_replies(on_reply=lambda m: click.echo(f"{name}> {m.body}"))
        if not replies:
            click.echo(f"({name} sent no reply within {MAX_WAIT_S:.0f}s)")


def _call(phone: Phone, environment: str, interactive: bool) -> None:
    """Play a call on ``phone``'s numbers: each line is said, an empty line is a silence; end of input hangs up."""
    name = phone.tenant.display_name
    try:
        call = Call(phone.tenant, phone.to_number, phone.from_number, phone.endpoints, environment)
    except ConfigError as exc:
        raise ChatError(f"tenant {phone.tenant.tenant_id}: {exc}") from exc

    def show(heard: Heard) -> None:
        for text in heard.said:
            click.echo(f"{name} (voice)> {text}")
        # What the call texted to the caller's phone (the form link): sent just after the spoken reply.
        deadline = time.monotonic() + VOICE_TEXT_WAIT_S
        while True:
            texts = phone.new_replies()
            for text in texts:
                click.echo(f"{name} (text)> {text.body}")
            if texts or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        if heard.hung_up:
            click.echo(f"({name} hung up)")

    if interactive:
        click.echo(f"Calling {name} ({phone.to_number}) as {phone.from_number} via {phone.endpoints.web_url}. "
                   "Say something on each line; an empty line is a silence; Ctrl-D hangs up.")
    show(call.dial())
    for line in _input_lines(interactive, prompt="you (voice)> "):
        if call.ended:
            break
        speech = line.strip()
        if not interactive:
            click.echo(f"you (voice)> {speech}")
        show(call.say(speech) if speech else call.stay_silent())
    if not call.ended:
        call.hang_up()
        click.echo("(call ended)")


def _input_lines(interactive: bool, prompt: str = "you> "):
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield input(prompt)
        except EOFError:
            click.echo()
            return
