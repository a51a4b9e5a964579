"""The ``laneway`` command line (console script ``laneway``)."""

from __future__ import annotations

import importlib

import click

from cli.export import export_command
from cli.state import state_group
from cli.tenants import tenants

DEV_COMMANDS: dict[str, str] = {
    "twilio-standin": "devtools.twilio_standin:twilio_standin_command",
    "openai-standin": "devtools.openai_standin:openai_standin_command",
    "run": "devtools.runner:run_command",
    "chat": "devtools.chat:chat_command",
    "demo": "devtools.demo:demo_command",
    "bench": "devtools.bench.main:bench",
    "route-eval": "devtools.evals.routes:route_eval_command",
    "eval": "devtools.evals.conversations:eval_command",
}
"""The developer tools' commands, ``name → "module:attribute"``, imported only when invoked
(or listed by ``--help``), so ``laneway worker`` never loads the stand-ins."""


class LazyGroup(click.Group):
    """A :class:`click.Group` whose ``lazy`` commands are imported on first use (Click's documented lazy-loading pattern)."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake, caught by the CLI tests
                raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=DEV_COMMANDS)
def main() -> None:
    """Laneway: a Redis-backed, multi-tenant conversation service."""


main.add_command(tenants)
main.add_command(state_group)  # `laneway state migrate`
main.add_command(export_command)  # `laneway export`


@main.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--pool", default=1, show_default=True, help="Number of SimpleWorker processes.")
@click.option(
    "--scheduler/--no-scheduler", default=True, show_default=True,
    help="Also compete for RQ's scheduler lock (--no-scheduler: leave it to `laneway scheduler`).",
)
def worker(burst: bool, pool: int, scheduler: bool) -> None:
    """Run RQ workers (SimpleWorker, JSON serializer) on Laneway's queue."""
    from core.settings import load_settings
    from jobs.worker import run_worker

    run_worker(load_settings(), burst=burst, pool=pool, scheduler=scheduler)


@main.command("scheduler")
def scheduler() -> None:
    """Run RQ's scheduler on its own (retries, delayed jobs, the recovery and trigger sweeps).

    One process holds RQ's scheduler lock; any others stand by and take over
    within a second of its lock expiring (61 s after the holder died).
    """
    from core.settings import load_settings
    from jobs.scheduler import run_scheduler

    run_scheduler(load_settings())


if __name__ == "__main__":  # `python -m cli.main …`, how `laneway run` starts its children
    main(prog_name="laneway")
