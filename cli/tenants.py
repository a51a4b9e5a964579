"""``laneway tenants validate FILE`` and ``laneway tenants load FILE``."""

from __future__ import annotations

import sys

import click

from core.connection import state_redis
from core.settings import load_settings
from state.errors import ConfigError
from state.tenant_config import TenantsFile, parse_tenants_yaml
from state.tenants import TenantRegistry


def _parse(path: str) -> TenantsFile:
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_tenants_yaml(fh.read())
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    except ConfigError as exc:
        click.echo(f"{path}: {exc.message}", err=True)
        for line in exc.details:
            click.echo(f"  {line}", err=True)
        sys.exit(1)


@click.group()
def tenants() -> None:
    """Validate and load tenant configuration."""


@tenants.command("validate")
@click.argument("path", type=click.Path(dir_okay=False))
def validate(path: str) -> None:
    """Check a tenants YAML file; errors name the field (tenants.0.phone_numbers)."""
    parsed = _parse(path)
    click.echo(f"{path}: ok ({len(parsed.tenants)} tenants: {', '.join(t.tenant_id for t in parsed.tenants)})")


@tenants.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
def load(path: str) -> None:
    """Validate a tenants YAML file and store it in Redis (REDIS_URL / LANEWAY_STATE_REDIS_URL).

    Writes through :meth:`TenantRegistry.apply`, the admin API's path too; each
    tenant's ``config_version`` is bumped.
    """
    parsed = _parse(path)
    settings = load_settings()
    registry = TenantRegistry(state_redis(settings))
    try:
        ids = registry.load_file(parsed, settings.env)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"loaded {len(ids)} tenants: {', '.join(ids)}")
