"""The ``laneway`` command line (console script ``laneway``)."""

from __future__ import annotations

import click

from service.cli_tenants import tenants


@click.group()
def main() -> None:
    """Laneway: a Redis-backed, multi-tenant conversation service."""


main.add_command(tenants)

# --- commands owned by other modules are registered below ---


@main.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option("--pool", default=1, show_default=True, help="Number of SimpleWorker processes.")
def worker(burst: bool, pool: int) -> None:
    """Run RQ workers (SimpleWorker, JSON serializer) on Laneway's queue."""
    from jobs.worker import run_worker
    from state.settings import load_settings

    run_worker(load_settings(), burst=burst, pool=pool)


# Development tools (service/devtools, service/runner.py, service/chat.py, service/demo.py).
from service.chat import chat_command  # noqa: E402
from service.bench import bench as bench_command  # noqa: E402
from service.demo import demo_command  # noqa: E402
from service.devtools.openai_standin import openai_standin_command  # noqa: E402
from service.devtools.twilio_standin import twilio_standin_command  # noqa: E402
from service.runner import run_command  # noqa: E402

main.add_command(twilio_standin_command)
main.add_command(openai_standin_command)
main.add_command(run_command)
main.add_command(chat_command)
main.add_command(demo_command)
main.add_command(bench_command)

# Stored-state maintenance (service/cli_state.py).
from service.cli_state import state_group  # noqa: E402

main.add_command(state_group)  # `laneway state migrate`

# Routing accuracy on the labelled set (service/route_eval.py).
from service.route_eval import route_eval_command  # noqa: E402

main.add_command(route_eval_command)  # `laneway route-eval`

# Conversation scripts played through the real pipeline (service/conversation_eval.py).
from service.conversation_eval import eval_command  # noqa: E402

main.add_command(eval_command)  # `laneway eval`

if __name__ == "__main__":  # `python -m service.cli …`, how `laneway run` starts its children
    main(prog_name="laneway")
