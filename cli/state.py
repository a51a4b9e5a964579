"""``laneway state migrate``: upcast stored session documents to the current schema."""

from __future__ import annotations

import sys

import click

from core.connection import state_redis
from core.settings import load_settings
from state.migrate import DEFAULT_BATCH, migrate_states


@click.group("state")
def state_group() -> None:
    """Maintain stored conversation state."""


@state_group.command("migrate")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's conversations.")
@click.option("--dry-run", is_flag=True, help="Count what would change; write nothing (not even the cursor).")
@click.option(
    "--batch", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(min=1), help="SCAN COUNT hint and pipeline size."
)
@click.option("--restart", is_flag=True, help="Ignore the saved cursor of an interrupted run; scan from the start.")
def migrate(tenant_id: str | None, dry_run: bool, batch: int, restart: bool) -> None:
    """Upcast every stored session document to the current schema (LANEWAY_STATE_REDIS_URL / REDIS_URL).

    Safe while workers run: each write is version-checked and bumps the
    conversation's version. An interrupted run resumes from its saved cursor.
    """
    settings = load_settings()
    redis = state_redis(settings)
    # DBSIZE counts every key (inboxes, outboxes, tenants), so it is an upper
    # bound on the state keys SCAN will return: the bar may end short of 100 %.
    estimate = int(redis.dbsize())
    try:
        with click.progressbar(
            length=max(estimate, 1), label="state keys", show_pos=True, file=sys.stderr
        ) as bar:
            summary = migrate_states(
                redis, tenant_id=tenant_id, dry_run=dry_run, batch=batch, restart=restart, on_batch=bar.update
            )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tenant") from exc
    verb = "would upgrade" if dry_run else "upgraded"
    click.echo(
        f"scanned {summary.scanned}, {verb} {summary.upgraded}, already current {summary.already_current}, "
        f"conflicts retried {summary.conflicts_retried}, too new {summary.too_new}, failed {summary.failed}"
        + (" (dry run: nothing written)" if dry_run else "")
    )
    if summary.failed:
        raise SystemExit(1)
