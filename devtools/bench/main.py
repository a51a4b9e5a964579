"""``laneway bench``: measure the turn pipeline on a private Redis server.

Prints a table and writes JSON. Figures:

* ``controller_turns_per_s``: :meth:`TurnController.drain` in one process with
  the deterministic agents, one turn per drain, many conversations.
* ``controller_round_trips_per_turn``: requests the state client sent during
  those drains (counted client-side by :class:`CountingRedis`: each command
  or pipeline is one round trip; a Lua script call is one), divided by turns.
  Deliveries are not enqueued in this phase, so RQ's share is excluded.
* ``e2e_*`` (:mod:`devtools.bench.e2e`): the Procfile's web and worker
  processes end to end, signed webhooks in and replies delivered to the
  Twilio stand-in (``e2e_turns_per_s``), against the naive Flask + RQ
  pipeline (:mod:`devtools.bench.naive`, ``e2e_naive_*``) in alternating
  rounds: turns/s and their ratio, CPU per turn per process, webhook and
  webhook-to-reply latency under a burst and at half of capacity, Redis
  commands per turn. With ``--profile``, py-spy flame graphs of both sides'
  web and worker processes (``--profile-dir``).
* ``worker_*`` (:mod:`devtools.bench.worker_cpu`): CPU per job of one worker
  process alone, Laneway's and the naive pipeline's (the e2e rounds' CPU
  figures move with what else shares the cores).
* ``memory_*``, ``turn_*``: Redis memory per conversation and turn latency at
  two stored sizes (:func:`bench_memory_and_scale`).
* ``trigger_sweep_*``: one trigger sweep (:func:`jobs.triggers.sweep_triggers_once`)
  with 10 and with 100,000 idle conversations in ``lw:triggers:due``, none
  due, in ms per sweep, and their ratio; and ms per due conversation of a sweep
  that fires in 200 (:func:`bench_trigger_sweep`).
* ``durability_*`` (:mod:`devtools.bench.durability`): webhook latency with
  ``LANEWAY_ACCEPT_WAITAOF`` off and ``1,0``, under ``appendfsync everysec``
  and ``always``.
* ``nlu_*`` (:mod:`devtools.bench.nlu`): what understanding one message costs
  a turn (:func:`agents.nlu.understand`): p50/p99 per message over a
  realistic message mix, wall and CPU time, training and warm-up time.
* ``pacing_*`` (:mod:`devtools.bench.pacing`): sender pacing, messages per
  second per number measured at the Twilio stand-in for a burst of nudges,
  and a customer's reply latency in the middle of it.
* ``voice_*`` (:mod:`devtools.bench.voice`): Twilio Voice turn latency, webhook
  in to TwiML out, through the Procfile's processes; p50/p99 over
  ``--voice-turns`` turns of concurrent calls.

``--only`` runs some sections (repeatable); by default all run. After the
figures, :func:`devtools.bench.e2e.comparison_table` prints the issue-17
comparison (Laneway, naive, ratio, target, met) as a Markdown table when the
e2e (and worker) sections ran.
"""

from __future__ import annotations

import json
import secrets
import time

import click
import redis

from core.settings import Settings
from devtools.bench.counting import CountingRedis
from devtools.bench.durability import bench_durability
from devtools.bench.e2e import bench_end_to_end, comparison_table
from devtools.bench.nlu import bench_nlu
from devtools.bench.pacing import bench_pacing
from devtools.bench.voice import CONCURRENT_CALLS, bench_voice
from devtools.bench.worker_cpu import bench_worker_cpu
from devtools.redis_server import RedisServer
from jobs.runtime import build_runtime
from jobs.worker import warm_nlu
from state.keys import ConversationKeys
from state.models import InboundMessage, utcnow
from state.tenant_config import parse_tenants_yaml

SECTIONS = ("controller", "e2e", "worker", "memory", "voice", "triggers", "durability", "nlu", "pacing")
"""What ``laneway bench --only`` can select."""
TENANT = "acme-insurance"
NUMBER = "+15550001111"
SCRIPT = ["What are your opening hours?", "How much does it cost?", "Do I need a medical exam?"]


def _accept(rt, conversation_id: str, text: str) -> None:
    message = InboundMessage(
        provider_id="SM" + secrets.token_hex(16),
        channel="sms",
        from_=conversation_id,
        to=NUMBER,
        text=text,
        received_at=utcnow(),
    )
    rt.store.accept(ConversationKeys(TENANT, conversation_id), message, 3600)


def bench_controller(rt, conn: CountingRedis, conversations: int, turns_each: int) -> dict:
    """Controller turns/s and round trips per turn, one process, NLU trained before the clock starts.

    A worker trains every tenant's NLU before its first job (:func:`jobs.worker.warm_nlu`);
    so does this bench, which otherwise timed one training (seconds) per run.
    """
    warm_nlu(rt)
    numbers = [f"+1555{i:07d}" for i in range(conversations)]
    rt.controller.on_committed = lambda keys, ids: None
    elapsed = 0.0
    commands = 0
    turns = 0
    for t in range(turns_each):
        for n in numbers:
            _accept(rt, n, SCRIPT[t % len(SCRIPT)])
        before = conn.round_trips
        started = time.perf_counter()
        for n in numbers:
            turns += rt.controller.drain(TENANT, n).turns
        elapsed += time.perf_counter() - started
        commands += conn.round_trips - before
    return {
        "controller_turns": turns,
        "controller_turns_per_s": round(turns / elapsed, 1),
        "controller_round_trips_per_turn": round(commands / turns, 2),
    }


def _turn_latencies_ms(rt, numbers: list[str]) -> list[float]:
    latencies = []
    for n in numbers:
        _accept(rt, n, "What are your opening hours?")
        started = time.perf_counter()
        rt.controller.drain(TENANT, n)
        latencies.append((time.perf_counter() - started) * 1000)
    return sorted(latencies)


def _mark_sent(rt, keys: ConversationKeys, message_ids: list[str]) -> None:
    for message_id in message_ids:
        rt.store.claim_outbound(keys, message_id)
        rt.store.finish_outbound(keys, message_id, "sent", "SM" + secrets.token_hex(16))


def bench_memory_and_scale(tenants_yaml: str, conversations: int, turns: int, scale_to: int, samples: int) -> dict:
    """Bytes of Redis memory per conversation after ``turns`` turns, and turn latency at two sizes.

    Runs on its own private server so nothing else counts in ``used_memory``.
    Each reply is claimed and marked ``sent`` with a Twilio-shaped sid, which
    leaves exactly what a delivery leaves, without the HTTP request. The
    larger size is reached by copying a finished conversation's keys
    (DUMP/RESTORE under new hash tags), which stores realistic documents
    without running every turn.
    """
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        settings = Settings(redis_url=server.url)
        rt = build_runtime(settings, queue_connection=conn, state_connection=conn)
        rt.tenants.load_file(parse_tenants_yaml(tenants_yaml), settings.env)
        rt.controller.on_committed = lambda keys, ids: _mark_sent(rt, keys, ids)
        numbers = [f"+1557{i:07d}" for i in range(conversations)]
        before = int(conn.info("memory")["used_memory"])
        for t in range(turns):
            for n in numbers:
                _accept(rt, n, SCRIPT[t % len(SCRIPT)])
                rt.controller.drain(TENANT, n)
        per_conversation = (int(conn.info("memory")["used_memory"]) - before) / conversations
        rt.controller.on_committed = lambda keys, ids: None  # latency: the turn alone

        small = _turn_latencies_ms(rt, numbers[:samples])
        template = ConversationKeys(TENANT, numbers[0])
        dumps = {part: conn.dump(getattr(template, part)) for part in ("state", "outbox", "seen")}
        for start in range(conversations, scale_to, 1000):
            pipe = conn.pipeline(transaction=False)
            for i in range(start, min(start + 1000, scale_to)):
                copy = ConversationKeys(TENANT, f"+1557{i:07d}")
                for part, blob in dumps.items():
                    pipe.restore(getattr(copy, part), 24 * 3600 * 1000, blob, replace=True)
            pipe.execute()
        large = _turn_latencies_ms(rt, numbers[samples : 2 * samples])
        p50 = lambda xs: xs[len(xs) // 2]  # noqa: E731
        return {
            "memory_conversations": conversations,
            "memory_bytes_per_conversation": round(per_conversation),
            "stored_conversations_small": conversations,
            "stored_conversations_large": scale_to,
            "turn_p50_ms_small": round(p50(small), 3),
            "turn_p50_ms_large": round(p50(large), 3),
            "turn_latency_ratio_large_small": round(p50(large) / p50(small), 2),
        }


def _sweep_ms(rt, sweeps: int) -> float:
    """Mean time (ms) of ``sweeps`` trigger sweeps that find nothing due."""
    from jobs.triggers import sweep_triggers_once

    started = time.perf_counter()
    for _ in range(sweeps):
        report = sweep_triggers_once(rt)
        assert report.claimed == 0, "an idle conversation was due"
    return (time.perf_counter() - started) * 1000 / sweeps


def bench_trigger_sweep(
    tenants_yaml: str, small: int = 10, large: int = 100_000, sweeps: int = 300, rounds: int = 7, due: int = 200
) -> dict:
    """Time one trigger sweep with ``small`` and ``large`` idle conversations indexed, none due.

    Idle conversations are members of ``lw:triggers:due`` scored 1 to 24 hours
    ahead (their next due time), as the sweep leaves them; the sweep reads
    only the index, so their documents are not written. The two sizes live in
    two databases of one private Redis server and are timed in alternating
    rounds (``rounds`` of ``sweeps`` sweeps each), so a change in the machine's
    load hits both; each figure is the median round. Then ``due`` real
    conversations become due beside the large index and one sweep fires a
    nudge in each (evaluation, the fire script, the drain's enqueue): ms per
    due conversation.
    """
    from state.keys import pending_member, trigger_index

    with RedisServer() as server:
        base = server.url.rsplit("/", 1)[0]
        now = int(time.time() * 1000)
        runtimes = {}
        for size, db in ((small, 1), (large, 2)):
            conn = redis.Redis.from_url(f"{base}/{db}")
            settings = Settings(redis_url=f"{base}/{db}")
            rt = build_runtime(settings, queue_connection=conn, state_connection=conn)
            rt.tenants.load_file(parse_tenants_yaml(tenants_yaml), settings.env)
            for chunk in range(0, size, 10_000):
                conn.zadd(trigger_index(), {
                    pending_member(TENANT, f"+1{i:010d}"): now + 3_600_000 + (i * 7919) % 82_800_000
                    for i in range(chunk, min(size, chunk + 10_000))
                })
            assert conn.zcard(trigger_index()) == size
            _sweep_ms(rt, 300)  # warm up: scripts loaded, tenant cached, connection open
            runtimes[size] = rt
        timings: dict[int, list[float]] = {small: [], large: []}
        for _ in range(rounds):
            for size in (small, large):
                timings[size].append(_sweep_ms(runtimes[size], sweeps))
        small_ms, large_ms = (sorted(timings[k])[rounds // 2] for k in (small, large))
        per_due_ms = _due_sweep_ms(runtimes[large], due)
    return {
        f"trigger_sweep_ms_{small}_idle": round(small_ms, 4),
        f"trigger_sweep_ms_{large}_idle": round(large_ms, 4),
        "trigger_sweep_ratio": round(large_ms / small_ms, 3),
        f"trigger_sweep_ms_per_due_{due}_fired": round(per_due_ms, 3),
    }


def _due_sweep_ms(rt, due: int) -> float:
    """Time one sweep that fires a nudge in ``due`` real conversations (beside the idle ones): ms per conversation."""
    from jobs.triggers import sweep_triggers_once
    from state.tenant_config import TriggerRule

    acme = rt.tenants.get(TENANT, cached=False)
    rule = TriggerRule.model_validate({
        "id": "bench-nudge", "condition": {"type": "no_activity", "seconds": 60},
        "actions": [{"type": "sms", "template": "Still there, {first_name}?"}],
    })
    rt.tenants.save(acme.model_copy(update={"triggers": [rule]}), rt.settings.env)
    rt.controller.on_committed = lambda keys, ids: None
    numbers = [f"+1666{i:07d}" for i in range(due)]
    for n in numbers:
        _accept(rt, n, "What are your opening hours?")
        rt.controller.drain(TENANT, n)
    started = time.perf_counter()
    report = sweep_triggers_once(rt, int(time.time() * 1000) + 61_000, batch=due)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert report.fired == due, report
    return elapsed_ms / due


@click.command("bench")
@click.option("--conversations", default=500, show_default=True)
@click.option("--turns-each", default=3, show_default=True)
@click.option("--e2e-turns", default=600, show_default=True, help="Signed webhooks (and bare RQ jobs) per end-to-end round.")
@click.option("--e2e-rounds", default=3, show_default=True, help="End-to-end rounds per side (medians are reported).")
@click.option("--profile", is_flag=True, help="Also record py-spy flame graphs of both sides' web and worker processes (e2e).")
@click.option(
    "--profile-dir", type=click.Path(file_okay=False),
    help="Where --profile writes {laneway,naive}-{web,worker}.svg (default: devtools/bench/profiles/).",
)
@click.option("--memory-conversations", default=10_000, show_default=True, help="Conversations for the memory figure.")
@click.option("--memory-turns", default=10, show_default=True)
@click.option("--scale-to", default=100_000, show_default=True, help="Stored conversations for the latency ratio.")
@click.option("--voice-turns", default=1000, show_default=True, help="Voice turns timed (10 per call).")
@click.option("--voice-calls", default=CONCURRENT_CALLS, show_default=True, help="Voice calls in progress at once.")
@click.option(
    "--only", multiple=True, type=click.Choice(SECTIONS), help="Run only these sections (repeatable); default: all."
)
@click.option("--trigger-idle", default=100_000, show_default=True, help="Idle conversations for the trigger sweep figure.")
@click.option("--durability-requests", default=500, show_default=True, help="Webhooks per LANEWAY_ACCEPT_WAITAOF case.")
@click.option("--nlu-repeats", default=50, show_default=True, help="Times each message of the NLU mix is understood.")
@click.option("--pacing-messages", default=15, show_default=True, help="Nudges to the 1 segment/s number (5x to the 5/s one).")
@click.option("--worker-jobs", default=300, show_default=True, help="Jobs per side for the worker-alone CPU figure.")
@click.option("--json-out", default="bench.json", show_default=True, type=click.Path(dir_okay=False))
def bench(
    conversations: int,
    turns_each: int,
    e2e_turns: int,
    e2e_rounds: int,
    profile: bool,
    profile_dir: str | None,
    memory_conversations: int,
    memory_turns: int,
    scale_to: int,
    voice_turns: int,
    voice_calls: int,
    only: tuple[str, ...],
    trigger_idle: int,
    durability_requests: int,
    nlu_repeats: int,
    pacing_messages: int,
    worker_jobs: int,
    json_out: str,
) -> None:
    """Measure controller turns/s and round trips per turn, end-to-end turns/s against the naive Flask + RQ pipeline, memory and latency, voice latency, NLU cost per message."""
    import logging
    from pathlib import Path

    logging.disable(logging.INFO)
    tenants_file = Path(__file__).parents[2] / "tenants.example.yaml"
    sections = set(only or SECTIONS)
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        state_conn = CountingRedis.from_url(server.url)
        settings = Settings(redis_url=server.url)
        rt = build_runtime(settings, queue_connection=conn, state_connection=state_conn)
        rt.tenants.load_file(parse_tenants_yaml(tenants_file.read_text()), settings.env)
        results = {"redis_server": conn.info("server").get("redis_version")}
        if "controller" in sections:
            results |= bench_controller(rt, state_conn, conversations, turns_each)
    if "e2e" in sections:
        results |= bench_end_to_end(tenants_file, e2e_turns, e2e_rounds, Path(profile_dir or Path(__file__).parent / "profiles") if profile else None)
    if "worker" in sections:
        results |= bench_worker_cpu(tenants_file, worker_jobs)
    if "memory" in sections:
        results |= bench_memory_and_scale(
            tenants_file.read_text(), memory_conversations, memory_turns, scale_to, min(1000, memory_conversations // 2)
        )
    if "voice" in sections:
        results |= bench_voice(tenants_file, voice_turns, concurrency=voice_calls)
    if "triggers" in sections:
        results |= bench_trigger_sweep(tenants_file.read_text(), large=trigger_idle)
    if "durability" in sections:
        results |= bench_durability(tenants_file, durability_requests)
    if "nlu" in sections:
        results |= bench_nlu(tenants_file.read_text(), repeats=nlu_repeats)
    if "pacing" in sections:
        results |= bench_pacing(tenants_file, pacing_messages)
    width = max(len(k) for k in results)
    for key, value in results.items():
        if not key.endswith("_by_command"):  # in the JSON only
            click.echo(f"{key:<{width}}  {value}")
    if "e2e_ratio" in results:
        table, met = comparison_table(results)
        results["e2e_targets_met"] = met
        click.echo("\n" + "\n".join(table))
    Path(json_out).write_text(json.dumps(results, indent=2) + "\n")
    click.echo(f"wrote {json_out}")
