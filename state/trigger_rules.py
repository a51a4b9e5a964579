"""Proactive triggers' rules: when a rule's condition holds, and the templates of its message. Pure.

Rules are configured per tenant (:class:`state.tenant_config.TriggerRule`);
the sweep that evaluates and fires them is :mod:`jobs.triggers`, and the
Redis side (the due index, the atomic fire) is :mod:`state.triggers`. Nothing
here reads or writes Redis.

:func:`rule_due` takes a rule, a snapshot of the conversation
(:class:`ConversationFacts`, built by :func:`facts_of` from the session
document, the opt-out marker and the form's activity stream, summarised by
:func:`screen_facts`) and the rule's fire record (:class:`FireRecord`), and
returns when the condition holds (:class:`Due`, ms since the epoch) or
``None`` if it cannot under these facts. Each due carries an *anchor*: the
activity it answers (the last activity of an idle spell, the change
completing a burst of field changes). A rule fires once per anchor, so one
idle spell gives one nudge, however many sweeps see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Mapping

from state.models import SessionState
from state.screen import ScreenActivity
from state.tenant_config import TenantConfig, TriggerRule


def ms(at: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return int(at.timestamp() * 1000)


# -- facts -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenFacts:
    """What the form's activity stream says, in ms since the epoch.

    Attributes:
        last_activity_ms: the latest activity of any kind.
        last_change_ms: the latest activity whose page or values differ from
            the one before it (the first activity counts as a change).
        submitted: the form was submitted.
        field_changes: ``(field_id, at_ms)`` of each change of a field's value
            (or a ``field_change`` action on it), oldest first.
    """

    last_activity_ms: int
    last_change_ms: int
    submitted: bool
    field_changes: tuple[tuple[str, int], ...] = ()


def screen_facts(activities: list[ScreenActivity], submitted: bool = False) -> ScreenFacts | None:
    """Summarise screen activities (oldest first); ``None`` when there are none. Pure."""
    if not activities:
        return None
    changes: list[tuple[str, int]] = []
    last_change = ms(activities[0].at)
    previous: ScreenActivity | None = None
    for a in activities:
        at = ms(a.at)
        if previous is not None:
            changed = [k for k in dict.fromkeys([*previous.fields, *a.fields]) if previous.fields.get(k) != a.fields.get(k)]
            if a.action == "field_change" and a.field_id and a.field_id not in changed:
                changed.append(a.field_id)
            changes += [(k, at) for k in changed]
            if changed or (a.page, a.screen_name) != (previous.page, previous.screen_name):
                last_change = at
        elif a.action == "field_change" and a.field_id:
            changes.append((a.field_id, at))
        previous = a
    return ScreenFacts(
        last_activity_ms=ms(activities[-1].at),
        last_change_ms=last_change,
        submitted=submitted or any(a.action == "submit" for a in activities),
        field_changes=tuple(changes),
    )


@dataclass(frozen=True)
class ConversationFacts:
    """A snapshot of one conversation for rule evaluation (times in ms since the epoch)."""

    status: str
    opted_out: bool
    has_form: bool
    last_customer_ms: int | None
    """The customer's last message (transcript entry authored ``customer``)."""
    last_commit_ms: int
    """The document's ``updated_at``: the last commit of any kind."""
    screen: ScreenFacts | None = None

    @property
    def customer_activity_ms(self) -> int | None:
        """The customer's last message or screen activity, whichever is later."""
        times = [t for t in (self.last_customer_ms, self.screen and self.screen.last_activity_ms) if t is not None]
        return max(times) if times else None

    @property
    def any_activity_ms(self) -> int:
        """The last commit or screen activity, whichever is later."""
        return max(self.last_commit_ms, self.screen.last_activity_ms if self.screen else 0)


def facts_of(state: SessionState, opted_out: bool, screen: ScreenFacts | None = None) -> ConversationFacts:
    """Build the :class:`ConversationFacts` of a session document. Pure."""
    last_customer = next((ms(e.at) for e in reversed(state.transcript) if e.author == "customer"), None)
    return ConversationFacts(
        status=state.status,
        opted_out=opted_out or state.opted_out,
        has_form=bool(state.form_token),
        last_customer_ms=last_customer,
        last_commit_ms=ms(state.updated_at),
        screen=screen,
    )


@dataclass(frozen=True)
class FireRecord:
    """A rule's fires in one conversation (``C:fires``): count, last fire and its anchor (ms)."""

    count: int = 0
    last_ms: int | None = None
    anchor_ms: int | None = None


def parse_fires(raw: Mapping[bytes, bytes]) -> dict[str, FireRecord]:
    """Read a ``C:fires`` hash into rule id → :class:`FireRecord`."""
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    rules = {k[2:] for k in fields if k[:2] in ("n:", "t:", "a:")}
    return {
        rule: FireRecord(
            count=int(fields.get(f"n:{rule}", 0)),
            last_ms=int(fields[f"t:{rule}"]) if f"t:{rule}" in fields else None,
            anchor_ms=int(fields[f"a:{rule}"]) if f"a:{rule}" in fields else None,
        )
        for rule in rules
    }


# -- evaluation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """When a rule's condition holds (``at_ms``), the activity it answers (``anchor_ms``) and,
    for ``field_error``, the field that tripped it."""

    at_ms: int
    anchor_ms: int
    field_id: str | None = None


def field_error_hit(
    changes: tuple[tuple[str, int], ...] | list[tuple[str, int]], pattern: str, times: int, within_ms: int, after_ms: int
) -> tuple[str, int] | None:
    """The earliest moment one field matching ``pattern`` completed ``times`` changes within
    ``within_ms``, counting only changes after ``after_ms``: ``(field_id, at_ms)``, or ``None``. Pure."""
    by_field: dict[str, list[int]] = {}
    for field_id, at in changes:
        if at > after_ms and fnmatchcase(field_id, pattern):
            by_field.setdefault(field_id, []).append(at)
    best: tuple[str, int] | None = None
    for field_id, ats in by_field.items():
        ats.sort()
        for i in range(times - 1, len(ats)):
            if ats[i] - ats[i - times + 1] <= within_ms:
                if best is None or ats[i] < best[1]:
                    best = (field_id, ats[i])
                break
    return best


def rule_due(rule: TriggerRule, facts: ConversationFacts, fired: FireRecord = FireRecord()) -> Due | None:
    """When ``rule`` may next fire given ``facts`` and its fire record; ``None``: not under these facts. Pure.

    A rule never fires for a conversation that is not ``active`` (escalated
    or closed conversations get no nudges), for an opted-out contact, past
    ``max_fires_per_session``, or twice for the same anchor; a rule that
    needs the form (:attr:`TriggerRule.needs_form`) needs an open form. The
    due time is at least the last fire plus ``cooldown_seconds``.

    * ``no_activity``: anchor the customer's last message or screen activity;
      due ``seconds`` after it.
    * ``session_inactive``: anchor the last commit or screen activity; due
      ``seconds`` after it.
    * ``no_progress``: anchor the last change of the screen (page or values);
      due ``seconds`` after it; not once the form is submitted.
    * ``field_error``: anchor the change completing ``times`` changes of one
      matching field within ``within_seconds`` (only changes after the last
      fire's anchor count); due at once.
    """
    if facts.status != "active" or facts.opted_out or fired.count >= rule.max_fires_per_session:
        return None
    if rule.needs_form and not facts.has_form:
        return None
    cond = rule.condition
    field_id = None
    if cond.type == "no_activity":
        anchor = facts.customer_activity_ms
        if anchor is None:
            return None
        at = anchor + cond.seconds * 1000
    elif cond.type == "session_inactive":
        anchor = facts.any_activity_ms
        at = anchor + cond.seconds * 1000
    elif cond.type == "no_progress":
        if facts.screen is None or facts.screen.submitted:
            return None
        anchor = facts.screen.last_change_ms
        at = anchor + cond.seconds * 1000
    else:  # field_error
        if facts.screen is None:
            return None
        hit = field_error_hit(
            facts.screen.field_changes, cond.field, cond.times, cond.within_seconds * 1000, fired.anchor_ms or 0
        )
        if hit is None:
            return None
        field_id, anchor = hit
        at = anchor
    if fired.anchor_ms is not None and anchor <= fired.anchor_ms:
        return None
    if fired.last_ms is not None:
        at = max(at, fired.last_ms + rule.cooldown_seconds * 1000)
    return Due(at_ms=at, anchor_ms=anchor, field_id=field_id)


def next_due_ms(rules: list[TriggerRule], facts: ConversationFacts, fires: Mapping[str, FireRecord]) -> int | None:
    """The earliest due time of any rule, or ``None`` when none can fire under these facts. Pure."""
    times = [d.at_ms for r in rules if (d := rule_due(r, facts, fires.get(r.id, FireRecord()))) is not None]
    return min(times) if times else None


_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders from ``values`` (missing: empty); ``{{``/``}}`` are braces. Pure.

    No evaluation of any kind: a placeholder is a dict lookup of a bare name
    (templates are validated by :func:`state.tenant_config.template_names`).
    """

    def fill(m: re.Match) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return str(values.get(m.group(1), ""))

    return _PLACEHOLDER.sub(fill, template)


def template_values(tenant: TenantConfig, state: SessionState, link: str) -> dict[str, str]:
    """The names an SMS template may use: the slots, ``display_name``, ``persona``, ``link``."""
    return {**state.slots, "display_name": tenant.display_name, "persona": tenant.persona, "link": link}
