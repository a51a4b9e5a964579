"""Conversation scripts for ``laneway eval``: their format, loading, and the checks of one step.

A script is one customer's conversation with one tenant, written in YAML as a
demanding but fair customer would expect a good service to answer it. A file
holds one conversation (a mapping) or several (a list of mappings)::

    id: c001-acme-sms-upfront-details        # unique; the number orders the suite (split rule)
    tenant: acme-insurance                   # a tenant of the tenants YAML
    channel: sms                             # sms | whatsapp | voice
    from: "+15557650001"                     # optional (default: derived from the id)
    pattern: upfront-details                 # which behaviour it exercises (free text, reported)
    language: en                             # optional, reported
    note: why this conversation              # optional
    steps:
      - customer: "Hi I'm Dana Whitfield, want life insurance"
        expect: {lane: guide, slots: {first_name: Dana, last_name: Whitfield},
                 reply_contains: ["Dana"], reply_not_contains: ["last name"]}
      - operator: {action: claim}            # claim | reply | note | escalate | handback | close
      - operator: {action: reply, text: "Hi, this is Ana."}
      - form: {page: 1, fields: {first_name: Dana}}          # screen activity on the hosted form
      - form: {page: 6, action: submit}
      - pause_s: 3600                        # the customer goes quiet for an hour
      - customer: "hola"
        channel: sms                         # a step may use another channel than the script's

Each step is exactly one of ``customer``, ``operator``, ``form`` or
``pause_s``. ``expect`` (optional on every step) holds the checks of
:class:`Expect`; a step without ``expect`` is played but not scored. Text
checks are case-insensitive and ignore runs of white space and the kind of
apostrophe; a needle ``re:<pattern>`` is a regular expression instead, and a
list inside ``reply_contains`` is "any of these".

On voice steps every reply is also checked for voice wording (no "Reply …",
no "Text AGENT"-style instructions, no URL read out) unless the step says
``voice_wording: false``.

Everything here is pure (no I/O apart from reading the files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Channel = Literal["sms", "whatsapp", "voice"]
OperatorAction = Literal["claim", "reply", "note", "escalate", "handback", "close"]
FormAction = Literal["load", "field_change", "page_change", "submit"]
SPLITS = ("dev", "test")

SCRIPT_NUMBER = re.compile(r"^c(?P<n>[0-9]{3,})-")
"""Script ids start ``c<number>-``: the order the scripts were written in (the split rule reads it)."""

VOICE_WORDING = (
    r"re:\breply\b",
    r"re:\btext (agent|yes|no|stop|start|help|resend|apply|me)\b",
    r"re:https?://",
)
"""What a caller must never hear: SMS instructions ("Reply YES", "Text AGENT") and URLs read out."""

FORM_LINK = re.compile(r"https?://\S+/f/(?P<token>[A-Za-z0-9_-]{8,128})")
"""A hosted form link in a reply."""


class ScriptError(Exception):
    """A conversation script is malformed (the message names the file and the field)."""


Needle = str
AnyOf = list[str]


class Expect(BaseModel):
    """What one step must produce. Every key is optional; only the given ones are checked.

    Attributes:
        lane: the conversation's lane after the step (a list: any of them).
        intent: the intent of the turn's first route (the router's reading of
            the customer's message; a list: any of them).
        slots: slot values after the step, compared case-insensitively; ``null``
            means the slot must be absent.
        status: the conversation's status after the step (``active``,
            ``waiting_human``, ``closed``; a list: any of them).
        reply: whether the customer got any reply at all in this step.
        reply_contains: each needle must occur in the step's replies (a nested
            list: at least one of its needles).
        reply_not_contains: no needle may occur in the step's replies.
        link_sent: whether a hosted form link went out (to any number) in this step.
        escalation: ``true``: the conversation waits for a person after the
            step; a string: and the handoff's reason is this (``urgent``,
            ``customer_request``, …); ``false``: it does not wait for a person.
        opted_out: the contact's opt-out after the step.
        fallback: whether the AI's reply is (``true``) or is not (``false``) one
            of the tenant's "don't know" fallbacks.
        voice_wording: on voice steps, check the voice wording (default on).
        rubric: what a good reply does, in words; judged by a model only with
            ``laneway eval --llm`` (ignored otherwise).
    """

    model_config = ConfigDict(extra="forbid")

    lane: str | list[str] | None = None
    intent: str | list[str] | None = None
    slots: dict[str, str | None] = Field(default_factory=dict)
    status: str | list[str] | None = None
    reply: bool | None = None
    reply_contains: list[Needle | AnyOf] = Field(default_factory=list)
    reply_not_contains: list[Needle] = Field(default_factory=list)
    link_sent: bool | None = None
    escalation: bool | str | None = None
    opted_out: bool | None = None
    fallback: bool | None = None
    voice_wording: bool = True
    rubric: str | None = None

    @model_validator(mode="after")
    def _regexes_compile(self) -> "Expect":
        for needle in [*_flatten(self.reply_contains), *self.reply_not_contains]:
            if needle.startswith("re:"):
                try:
                    re.compile(needle[3:])
                except re.error as exc:
                    raise ValueError(f"bad regular expression {needle!r}: {exc}") from exc
        return self


class OperatorStep(BaseModel):
    """An operator's action through the takeover API (the dashboard's calls)."""

    model_config = ConfigDict(extra="forbid")

    action: OperatorAction
    text: str | None = Field(None, min_length=1, max_length=1600)

    @model_validator(mode="after")
    def _text_when_needed(self) -> "OperatorStep":
        if self.action in ("reply", "note") and not self.text:
            raise ValueError(f"operator action {self.action} needs text")
        return self


class FormStep(BaseModel):
    """Screen activity on the hosted form, posted through the form page's own endpoint.

    ``fields`` are the values typed so far on top of the previous activity's
    (the runner sends every field of the form, as the page does); ``page``
    is the page number (1-based) whose ``screen_name`` the activity carries.
    """

    model_config = ConfigDict(extra="forbid")

    page: int = Field(ge=1, le=100)
    fields: dict[str, str] = Field(default_factory=dict)
    action: FormAction = "field_change"
    field_id: str | None = None


class Step(BaseModel):
    """One step of a script: exactly one of ``customer``, ``operator``, ``form``, ``pause_s``."""

    model_config = ConfigDict(extra="forbid")

    customer: str | None = Field(None, min_length=1, max_length=1024)
    operator: OperatorStep | None = None
    form: FormStep | None = None
    pause_s: int | None = Field(None, ge=1, le=30 * 86400)
    channel: Channel | None = None
    expect: Expect | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Step":
        kinds = [k for k in ("customer", "operator", "form", "pause_s") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step is exactly one of customer, operator, form, pause_s (got {kinds or 'none'})")
        if self.pause_s is not None and self.expect is not None:
            raise ValueError("a pause has nothing to check")
        return self

    @property
    def kind(self) -> str:
        """``customer``, ``operator``, ``form`` or ``pause``."""
        if self.customer is not None:
            return "customer"
        if self.operator is not None:
            return "operator"
        return "form" if self.form is not None else "pause"


class Script(BaseModel):
    """One scripted conversation (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,80}$")
    tenant: str
    channel: Channel
    from_: str | None = Field(None, alias="from", pattern=r"^\+[1-9][0-9]{6,14}$")
    pattern: str
    language: str = "en"
    note: str = ""
    steps: list[Step] = Field(min_length=1)

    @property
    def number(self) -> int | None:
        """The script's number (``c017-…`` is 17), or ``None`` for an unnumbered id."""
        found = SCRIPT_NUMBER.match(self.id)
        return int(found.group("n")) if found else None

    def customer_number(self) -> str:
        """The customer's E.164 number: ``from``, else ``+1555765`` + 4 digits derived from the id."""
        if self.from_:
            return self.from_
        digits = self.number if self.number is not None else sum(self.id.encode()) * 7
        return f"+1555765{digits % 10000:04d}"


@dataclass(frozen=True)
class LoadedScript:
    """A script with where it came from: ``split`` is the directory it sits in (``dev``, ``test``, or ``""``)."""

    script: Script
    path: Path
    split: str


def split_of(number: int) -> str:
    """The split rule: every third script by number (3, 6, 9, …) is held out in ``test``; the rest are ``dev``."""
    return "test" if number % 3 == 0 else "dev"


def load_file(path: Path, split: str = "") -> list[LoadedScript]:
    """Read one script file (a mapping or a list of mappings).

    Raises:
        ScriptError: unreadable YAML, or a script that breaks the format
            (the message names the file, the script and the field).
    """
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScriptError(f"{path}: {exc}") from exc
    raws = doc if isinstance(doc, list) else [doc]
    loaded = []
    for index, raw in enumerate(raws):
        where = f"{path}[{index}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) and raw.get("id") else "")
        if not isinstance(raw, dict):
            raise ScriptError(f"{where}: a script is a mapping")
        try:
            script = Script.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise ScriptError(f"{where}: {problems}") from None
        loaded.append(LoadedScript(script, path, split))
    return loaded


def load_suite(root: Path, splits: Sequence[str] = SPLITS) -> list[LoadedScript]:
    """Read every ``*.yaml`` under ``root/<split>/`` for each split (or the files ``root`` names itself).

    ``root`` may also be a single file or a directory without split
    subdirectories (its scripts get split ``""``).

    Returns:
        The scripts, ordered by number then id.

    Raises:
        ScriptError: a malformed file, or the same id twice.
    """
    files: list[tuple[Path, str]] = []
    if root.is_file():
        files.append((root, ""))
    elif any((root / s).is_dir() for s in SPLITS):
        for split in splits:
            files += [(p, split) for p in sorted((root / split).glob("**/*.yaml"))]
    else:
        files += [(p, "") for p in sorted(root.glob("**/*.yaml"))]
    scripts: list[LoadedScript] = []
    seen: dict[str, Path] = {}
    for path, split in files:
        for item in load_file(path, split):
            if item.script.id in seen:
                raise ScriptError(f"{path}: id {item.script.id!r} is also in {seen[item.script.id]}")
            seen[item.script.id] = path
            scripts.append(item)
    scripts.sort(key=lambda s: (s.script.number if s.script.number is not None else 10**9, s.script.id))
    return scripts


# -- matching ----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Case-fold, unify apostrophes and quotes, and collapse white space (how replies are compared)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.casefold().split())


def occurs(needle: str, haystack: str) -> bool:
    """Whether ``needle`` occurs in ``haystack``: normalized substring, or ``re:<pattern>`` searched case-insensitively."""
    if needle.startswith("re:"):
        return re.search(needle[3:], haystack, re.IGNORECASE) is not None
    return normalize(needle) in normalize(haystack)


def _flatten(items: Iterable[str | list[str]]) -> list[str]:
    out: list[str] = []
    for item in items:
        out += item if isinstance(item, list) else [item]
    return out


def is_fallback(text: str, fallback_texts: Sequence[str]) -> bool:
    """Whether a reply is one of the "don't know" fallbacks: it contains one of ``fallback_texts`` (see :func:`occurs`)."""
    return any(occurs(f, text) for f in fallback_texts if f.strip())


# -- one step's observations and checks --------------------------------------------------


@dataclass
class Reply:
    """One message the step produced for the customer.

    Attributes:
        author: ``ai``, ``human`` or ``system`` (a trigger's nudge).
        text: the message.
        channel: ``voice`` (spoken in the call) or the text channel (``sms``, ``whatsapp``).
        to: the recipient (the customer, or another number the link was sent to).
        delivered: reached the phone (``False``: suppressed by an opt-out, or failed).
    """

    author: str
    text: str
    channel: str
    to: str
    delivered: bool = True


@dataclass
class Observed:
    """What the runner saw after one step (the inputs of :func:`check_step`).

    ``routes`` are the turn's routes in order (the router's decision, then
    each handoff's), as ``{"lane", "intent", "reason", "confidence", "router"}``.
    ``heard`` is what a caller heard (voice steps only).
    """

    lane: str | None = None
    status: str | None = None
    slots: dict[str, str] = field(default_factory=dict)
    opted_out: bool = False
    handoff_reason: str | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    heard: str | None = None

    def customer_text(self, customer: str) -> str:
        """What the customer got in the conversation: the spoken reply on a call, else the texts delivered to them."""
        if self.heard is not None:
            return self.heard
        return "\n".join(r.text for r in self.replies if r.delivered and r.to == customer and r.channel != "voice")

    def ai_replies(self) -> list[Reply]:
        """The AI's own replies of the step (spoken or texted), for the fallback share."""
        return [r for r in self.replies if r.author == "ai"]

    @property
    def intent(self) -> str | None:
        """The first route's intent (the router's reading of the customer's message)."""
        return self.routes[0]["intent"] if self.routes else None

    def link_sent(self) -> bool:
        """Whether a hosted form link went out in a delivered text."""
        return any(r.delivered and r.channel != "voice" and FORM_LINK.search(r.text) for r in self.replies)


@dataclass(frozen=True)
class Check:
    """One check's outcome: its ``name``, whether it passed, what was expected and what was seen."""

    name: str
    ok: bool
    expected: Any
    actual: Any


def _one_of(expected: str | list[str]) -> list[str]:
    return expected if isinstance(expected, list) else [expected]


def check_step(
    expect: Expect, seen: Observed, *, customer: str, voice: bool, fallback_texts: Sequence[str]
) -> list[Check]:
    """Compare one step's observations with its expectations.

    Args:
        expect: the step's ``expect``.
        seen: what the runner observed.
        customer: the customer's address (replies to other numbers do not count as the reply).
        voice: whether the step was spoken (voice wording is then checked).
        fallback_texts: the "don't know" replies (for ``fallback``).

    Returns:
        One :class:`Check` per expectation given (and the voice wording check
        on voice steps); the rubric is not checked here.
    """
    checks: list[Check] = []
    text = seen.customer_text(customer)
    if expect.lane is not None:
        checks.append(Check("lane", seen.lane in _one_of(expect.lane), expect.lane, seen.lane))
    if expect.intent is not None:
        checks.append(Check("intent", seen.intent in _one_of(expect.intent), expect.intent, seen.intent))
    for slot, wanted in expect.slots.items():
        got = seen.slots.get(slot)
        ok = got is None if wanted is None else got is not None and normalize(got) == normalize(str(wanted))
        checks.append(Check(f"slot {slot}", ok, wanted, got))
    if expect.status is not None:
        checks.append(Check("status", seen.status in _one_of(expect.status), expect.status, seen.status))
    if expect.reply is not None:
        checks.append(Check("reply", bool(text.strip()) == expect.reply, expect.reply, text or None))
    for needle in expect.reply_contains:
        options = needle if isinstance(needle, list) else [needle]
        ok = any(occurs(n, text) for n in options)
        checks.append(Check("reply contains", ok, needle, None if ok else text))
    for needle in expect.reply_not_contains:
        ok = not occurs(needle, text)
        checks.append(Check("reply lacks", ok, needle, None if ok else text))
    if expect.link_sent is not None:
        checks.append(Check("link sent", seen.link_sent() == expect.link_sent, expect.link_sent, seen.link_sent()))
    if expect.escalation is not None:
        waiting = seen.status == "waiting_human"
        if isinstance(expect.escalation, str):
            ok = waiting and seen.handoff_reason == expect.escalation
        else:
            ok = waiting == expect.escalation
        checks.append(Check("escalation", ok, expect.escalation, seen.handoff_reason if waiting else False))
    if expect.opted_out is not None:
        checks.append(Check("opted out", seen.opted_out == expect.opted_out, expect.opted_out, seen.opted_out))
    if expect.fallback is not None:
        got = any(is_fallback(r.text, fallback_texts) for r in seen.ai_replies())
        checks.append(Check("fallback", got == expect.fallback, expect.fallback, got))
    if voice and expect.voice_wording:
        bad = [n for n in VOICE_WORDING if occurs(n, text)]
        checks.append(Check("voice wording", not bad, "no SMS wording", None if not bad else text))
    return checks
