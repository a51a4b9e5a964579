"""``laneway route-eval``: measure routing accuracy on a labelled set of customer messages.

The labelled set (``tests/data/routing_labelled.yaml``; its header describes the
format) holds synthetic customer messages for the example tenant, each with the
lane a human dispatcher would pick. Every router in :data:`ROUTERS` is run on
every item, with no Redis: the tenant comes from ``tenants.example.yaml`` and
each item's state is built in memory. Accuracy is reported per router and per
split (``dev`` may be tuned on; ``test`` is held out), with a confusion matrix
(rows the expected lane, columns the predicted one) and the misrouted items
with the route's reason and evidence.

Only the labelled (synthetic) text is ever printed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import click
import yaml

from agents import Route, TurnInput, route
from agents.llm_router import make_llm_router
from state.models import InboundMessage, SessionState
from state.tenant_config import TenantConfig, parse_tenants_yaml

REPO_ROOT: Final = Path(__file__).parents[2]
DEFAULT_DATA: Final = REPO_ROOT / "tests" / "data" / "routing_labelled.yaml"
"""The labelled set shipped with the repository."""
DEFAULT_TENANTS: Final = REPO_ROOT / "tenants.example.yaml"
LANES: Final[tuple[str, ...]] = ("guide", "sms", "support")
"""Column and row order of the confusion matrix."""
SPLITS: Final[tuple[str, ...]] = ("dev", "test")
EVAL_NOW: Final = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
"""The fixed ``now`` of every evaluated turn."""
CUSTOMER: Final = "+15557650000"
PUBLIC_BASE_URL: Final = "https://laneway.test"

Router = Callable[[TurnInput], Route]
"""A router: the turn in, a :class:`agents.Route` out."""

ROUTERS: dict[str, Router] = {"deterministic": route}
"""Every router evaluated, by name. Add an LLM router here (name → callable)."""


class RouteEvalError(Exception):
    """The labelled set is malformed."""


@dataclass(frozen=True)
class LabelledItem:
    """One labelled turn.

    Attributes:
        item_id: stable id (``r001`` …).
        split: ``dev`` or ``test``.
        texts: the turn's message bodies, in arrival order.
        lane: the lane a human would pick.
        lane_before: the conversation's lane before the turn, or ``None``.
        lane_age_s: seconds since ``lane_since`` (only with ``lane_before``).
        opted_out: whether the contact is opted out before the turn.
        note: why the label.
    """

    item_id: str
    split: str
    texts: tuple[str, ...]
    lane: str
    lane_before: str | None = None
    lane_age_s: float = 0.0
    opted_out: bool = False
    note: str = ""

    @property
    def text(self) -> str:
        """The turn's text as the controller joins it."""
        return " ".join(t.strip() for t in self.texts)


def load_labelled(path: Path) -> list[LabelledItem]:
    """Read and check the labelled set.

    Args:
        path: a YAML file with ``items`` (see the header of the shipped file).

    Returns:
        The items, in file order.

    Raises:
        RouteEvalError: the file lacks ``items``, an item lacks ``text`` or
            ``lane``, names an unknown lane or split, or repeats an ``id``.
    """
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise RouteEvalError(f"{path}: expected a mapping with a list 'items'")
    items: list[LabelledItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc["items"]):
        where = f"{path}: items.{index}"
        if not isinstance(raw, dict) or "text" not in raw or "lane" not in raw:
            raise RouteEvalError(f"{where}: needs 'text' and 'lane'")
        texts = raw["text"] if isinstance(raw["text"], list) else [raw["text"]]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise RouteEvalError(f"{where}.text: one or more non-empty strings")
        if raw["lane"] not in LANES:
            raise RouteEvalError(f"{where}.lane: {raw['lane']!r} is not one of {LANES}")
        split = raw.get("split", "dev")
        if split not in SPLITS:
            raise RouteEvalError(f"{where}.split: {split!r} is not one of {SPLITS}")
        item_id = str(raw.get("id", f"item{index}"))
        if item_id in seen:
            raise RouteEvalError(f"{where}.id: {item_id!r} repeated")
        seen.add(item_id)
        context = raw.get("context") or {}
        lane_before = context.get("lane")
        if lane_before is not None and lane_before not in LANES:
            raise RouteEvalError(f"{where}.context.lane: {lane_before!r} is not one of {LANES}")
        items.append(
            LabelledItem(
                item_id=item_id,
                split=split,
                texts=tuple(texts),
                lane=raw["lane"],
                lane_before=lane_before,
                lane_age_s=float(context.get("lane_age_s", 0)),
                opted_out=bool(context.get("opted_out", False)),
                note=str(raw.get("note", "")),
            )
        )
    return items


def load_tenant(tenant_id: str = "acme-insurance", tenants_file: Path = DEFAULT_TENANTS) -> TenantConfig:
    """Return one tenant of a tenants YAML file, parsed without Redis.

    Raises:
        RouteEvalError: the file has no such tenant.
    """
    for tenant in parse_tenants_yaml(tenants_file.read_text()).tenants:
        if tenant.tenant_id == tenant_id:
            return tenant
    raise RouteEvalError(f"{tenants_file}: no tenant {tenant_id!r}")


def build_turn(tenant: TenantConfig, item: LabelledItem, now: datetime = EVAL_NOW) -> TurnInput:
    """Return the :class:`TurnInput` of one labelled item (state built in memory, as the unit tests do)."""
    state = SessionState.new(tenant.tenant_id, CUSTOMER, now - timedelta(hours=1))
    update: dict[str, Any] = {"opted_out": item.opted_out}
    if item.lane_before is not None:
        update |= {"lane": item.lane_before, "lane_since": now - timedelta(seconds=item.lane_age_s)}
    state = state.model_copy(update=update)
    messages = tuple(
        InboundMessage(
            provider_id=f"SM{i:032d}",
            channel=state.channel,
            from_=CUSTOMER,
            to=tenant.phone_numbers[0],
            text=text,
            received_at=now,
        )
        for i, text in enumerate(item.texts)
    )
    return TurnInput(tenant, state, messages, item.text, now, PUBLIC_BASE_URL)


@dataclass
class RouterReport:
    """One router's results on a set of items.

    Attributes:
        router: the router's name.
        outcomes: ``(item, route)`` per item, in file order.
    """

    router: str
    outcomes: list[tuple[LabelledItem, Route]] = field(default_factory=list)

    def accuracy(self, split: str | None = None) -> float:
        """Return the share (0–1) of items of ``split`` (``None``: all) routed to their label."""
        chosen = [(i, r) for i, r in self.outcomes if split is None or i.split == split]
        if not chosen:
            return 0.0
        return sum(r.lane == i.lane for i, r in chosen) / len(chosen)

    def count(self, split: str | None = None) -> int:
        """Return how many items of ``split`` (``None``: all) were evaluated."""
        return sum(1 for i, _ in self.outcomes if split is None or i.split == split)

    def confusion(self, split: str | None = None) -> dict[str, dict[str, int]]:
        """Return ``{expected lane: {predicted lane: count}}`` for ``split`` (``None``: all)."""
        matrix = {lane: {other: 0 for other in LANES} for lane in LANES}
        for item, decision in self.outcomes:
            if split is None or item.split == split:
                matrix[item.lane][decision.lane] += 1
        return matrix

    def misrouted(self, split: str | None = None) -> list[tuple[LabelledItem, Route]]:
        """Return the ``(item, route)`` pairs whose route's lane differs from the label."""
        return [(i, r) for i, r in self.outcomes if (split is None or i.split == split) and r.lane != i.lane]


def evaluate(
    items: Sequence[LabelledItem], tenant: TenantConfig, routers: Mapping[str, Router] = ROUTERS
) -> list[RouterReport]:
    """Run every router on every item.

    Args:
        items: the labelled items.
        tenant: the tenant the items were written for.
        routers: name → router.

    Returns:
        One :class:`RouterReport` per router, in ``routers`` order.
    """
    reports = []
    for name, router in routers.items():
        report = RouterReport(name)
        for item in items:
            report.outcomes.append((item, router(build_turn(tenant, item))))
        reports.append(report)
    return reports


def format_confusion(matrix: Mapping[str, Mapping[str, int]]) -> str:
    """Return the confusion matrix as aligned text: rows expected, columns predicted."""
    width = max(len("expected\\predicted"), *(len(lane) for lane in LANES)) + 2
    lines = ["expected\\predicted".ljust(width) + "".join(lane.rjust(9) for lane in LANES)]
    for lane in LANES:
        lines.append(lane.ljust(width) + "".join(str(matrix[lane][other]).rjust(9) for other in LANES))
    return "\n".join(lines)


def report_dict(report: RouterReport, splits: Sequence[str | None]) -> dict[str, Any]:
    """Return a JSON-ready summary of one router's report over ``splits`` (``None`` = all)."""
    return {
        (split or "all"): {
            "items": report.count(split),
            "accuracy": round(report.accuracy(split), 4),
            "confusion": report.confusion(split),
            "misrouted": [
                {"id": i.item_id, "text": list(i.texts), "expected": i.lane, "predicted": r.lane,
                 "intent": r.intent, "reason": r.reason, "evidence": r.evidence}
                for i, r in report.misrouted(split)
            ],
        }
        for split in splits
    }  # fmt: skip


def _llm_router() -> Router:
    """The production LLM router, wired from the environment's settings (as a worker wires it)."""
    from core.connection import state_redis
    from core.settings import load_settings
    from jobs.openai_http import OpenAIChatCompletion, OpenAIClientFactory
    from state.usage import UsageLedger

    settings = load_settings()
    complete = OpenAIChatCompletion(OpenAIClientFactory(settings), UsageLedger(state_redis(settings)), settings.llm_prices)
    return make_llm_router(complete, fallback_router=route)


@click.command("route-eval")
@click.option("--data", "data_path", default=str(DEFAULT_DATA), show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="The labelled set (YAML).")
@click.option("--split", "split", type=click.Choice(["dev", "test", "all"]), default="all", show_default=True,
              help="Which items to evaluate; 'all' also reports dev and test separately.")
@click.option("--tenants", "tenants_path", default=str(DEFAULT_TENANTS), show_default=True,
              type=click.Path(exists=True, dir_okay=False), help="Tenants YAML holding the set's tenant.")
@click.option("--json-out", default=None, type=click.Path(dir_okay=False),
              help="Also write the figures, matrices and misrouted items as JSON to this file.")
@click.option("--llm", "with_llm", is_flag=True,
              help="Also run the LLM router with the tenant's llm settings (LANEWAY_OPENAI_BASE_URL, the key's env var); "
                   "each call is budgeted and recorded on the state Redis (REDIS_URL) like a real turn's.")
def route_eval_command(data_path: str, split: str, tenants_path: str, json_out: str | None, with_llm: bool) -> None:
    """Print each router's accuracy and confusion matrix on the labelled routing set."""  # fmt: skip
    path = Path(data_path)
    doc_tenant = (yaml.safe_load(path.read_text()) or {}).get("tenant_id", "acme-insurance")
    try:
        items = load_labelled(path)
        tenant = load_tenant(doc_tenant, Path(tenants_path))
    except RouteEvalError as exc:
        raise click.ClickException(str(exc)) from exc
    if split != "all":
        items = [i for i in items if i.split == split]
    splits: list[str | None] = [split] if split != "all" else ["dev", "test", None]
    routers: dict[str, Router] = dict(ROUTERS)
    if with_llm:
        if tenant.llm is None:
            raise click.ClickException(f"tenant {tenant.tenant_id} has no llm section in {tenants_path}")
        tenant = tenant.model_copy(update={"llm": tenant.llm.model_copy(update={"enabled": True})})
        routers["llm"] = _llm_router()
    reports = evaluate(items, tenant, routers)
    for report in reports:
        click.echo(f"== router: {report.router} ({len(items)} items, tenant {tenant.tenant_id})")
        for s in splits:
            ok = round(report.accuracy(s) * report.count(s))
            click.echo(f"accuracy {s or 'all':<4} {report.accuracy(s):7.1%}  ({ok}/{report.count(s)})")
        shown = splits[-1]
        click.echo(f"\nconfusion matrix ({shown or 'all'}):")
        click.echo(format_confusion(report.confusion(shown)))
        wrong = report.misrouted(shown)
        click.echo(f"\nmisrouted ({len(wrong)}):")
        for item, decision in wrong:
            click.echo(
                f"  {item.item_id} [{item.split}] {list(item.texts)!r} expected {item.lane}, got {decision.lane} "
                f"(intent {decision.intent}, reason {decision.reason}, evidence {decision.evidence})"
            )
        fallbacks = Counter(decision.fallback for _, decision in report.outcomes if decision.fallback)
        if fallbacks:
            click.echo(f"fallbacks to the deterministic route: {dict(fallbacks)}")
        click.echo("")
    if json_out:
        Path(json_out).write_text(
            json.dumps({r.router: report_dict(r, splits) for r in reports}, indent=2, ensure_ascii=False) + "\n"
        )
        click.echo(f"wrote {json_out}")
