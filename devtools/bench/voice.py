"""Voice pipeline latency for ``laneway bench``: Twilio Voice webhook in to TwiML out.

The Procfile's processes run as children on a private Redis server, exactly
as :class:`devtools.bench.e2e.LanewayStack` starts them (gunicorn serving
``service:create_app()`` with the Procfile's options, ``laneway worker
--pool 2``, the Twilio stand-in), with the example tenants' deterministic
agents. The bench process plays Twilio for :data:`CONCURRENT_CALLS` calls at a
time: each call is a correctly signed ``POST /twilio/voice`` (greeting), then
``turns_per_call`` signed ``POST /twilio/voice/turn?n=N`` with a
``SpeechResult`` from :data:`SCRIPT`, each posted ``think_s`` after the
previous answer arrived (a caller speaks for seconds; the default
:data:`THINK_S` keeps the run short while the offered load stays below what
the two cores can serve, so the figure is latency, not queueing at
saturation), then the status callback.
Every caller is a new number, so each call is its own conversation.

A turn's latency is the time from sending its webhook to receiving the TwiML
that speaks its reply: the whole accept, enqueue, RQ pickup, drain, commit
and the web process noticing the reply. A turn answered with the holding
phrase instead counts until its poll chain spoke the reply (then far above
any target) and is counted in ``voice_held_turns``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import requests
from twilio.request_validator import RequestValidator

from devtools.bench.e2e import (
    AUTH_TOKEN,
    NUMBER,
    WORKER_SETUP,
    LanewayStack,
    Standin,
    _percentile,
)
from service.twilio_voice import HOLDING_TEXT

CONCURRENT_CALLS = 6
"""Calls in progress at once (each holds one gunicorn thread while its turn waits; the web line has 8)."""
SCRIPT = [
    "What are your opening hours?",
    "How much does it cost?",
    "Do I need a medical exam?",
    "How long does the application take?",
]
"""What callers say, in turn (FAQ questions: the deterministic support lane answers each in words)."""
WARMUP_CALLS, WARMUP_TURNS = 2, 3
"""Calls (of that many turns) run before timing: first requests of fresh processes load code and scripts."""
TARGET_P99_MS = 250.0
"""Issue 4's target for the voice turn p99 on the development machine."""
THINK_S = 0.25
"""Seconds between a turn's answer and the caller's next utterance."""
REQUEST_TIMEOUT_S = 20.0


class VoiceCaller:
    """Plays Twilio for one call at a time against the web process at ``web_url`` (signing for that URL)."""

    def __init__(self, web_url: str, think_s: float = 0.0) -> None:
        self.web_url = web_url
        self.think_s = think_s
        self.validator = RequestValidator(AUTH_TOKEN)
        self.session = requests.Session()

    def post(self, path: str, form: dict[str, str]) -> tuple[float, requests.Response]:
        """POST ``form`` to ``path`` signed over ``web_url + path``; return (latency in ms, response)."""
        headers = {"X-Twilio-Signature": self.validator.compute_signature(self.web_url + path, form)}
        started = time.perf_counter()
        answer = self.session.post(self.web_url + path, data=form, headers=headers, timeout=REQUEST_TIMEOUT_S)
        latency_ms = (time.perf_counter() - started) * 1000
        if answer.status_code not in (200, 204):
            raise click.ClickException(f"{path} answered {answer.status_code}: {answer.text[:300]}")
        return latency_ms, answer

    def call(self, caller: str, turns: int) -> dict:
        """One call of ``turns`` utterances.

        Returns:
            ``greeting_ms``, ``turns_ms`` (one latency per turn), ``held`` (turns
            answered with the holding phrase first).

        Raises:
            click.ClickException: an answer was not 2xx, or not the TwiML expected.
        """
        call_sid = "CA" + secrets.token_hex(16)
        base = {
            "CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": NUMBER,
            "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01",
        }  # fmt: skip
        greeting_ms, _ = self.post("/twilio/voice", base)
        turns_ms, held = [], 0
        for n in range(1, turns + 1):
            form = base | {"SpeechResult": SCRIPT[(n - 1) % len(SCRIPT)], "Confidence": "0.93"}
            latency_ms, answer = self.post(f"/twilio/voice/turn?n={n}", form)
            root = ET.fromstring(answer.content)
            redirect = root.find("Redirect")
            said = [s.text or "" for s in root.iter("Say")]
            if said == [HOLDING_TEXT] and redirect is not None and "/poll" in (redirect.text or ""):
                held += 1
                while said == [HOLDING_TEXT] and redirect is not None:
                    poll_ms, answer = self.post(redirect.text or "", base)
                    latency_ms += poll_ms
                    root = ET.fromstring(answer.content)
                    redirect, said = root.find("Redirect"), [s.text or "" for s in root.iter("Say")]
            gather = root.find("Gather")
            if gather is None or gather.get("action") != f"/twilio/voice/turn?n={n + 1}" or not "".join(said).strip():
                raise click.ClickException(f"turn {n} of {call_sid} was not answered in words: {answer.text[:300]}")
            turns_ms.append(latency_ms)
            time.sleep(self.think_s)
        self.post("/twilio/voice/status", base | {"CallStatus": "completed", "CallDuration": str(turns * 5)})
        return {"greeting_ms": greeting_ms, "turns_ms": turns_ms, "held": held}


def _run_calls(web_url: str, callers: list[str], turns_per_call: int, concurrency: int, think_s: float) -> list[dict]:
    local = threading.local()

    def one(caller: str) -> dict:
        player = getattr(local, "player", None)
        if player is None:
            player = local.player = VoiceCaller(web_url, think_s)
        return player.call(caller, turns_per_call)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, callers))


def bench_voice(
    tenants_file: Path,
    turns: int = 1000,
    turns_per_call: int = 10,
    concurrency: int = CONCURRENT_CALLS,
    think_s: float = THINK_S,
) -> dict:
    """Voice turn latency (webhook in to TwiML out), p50 and p99 over ``turns`` turns.

    Args:
        tenants_file: the tenants YAML (``tenants.example.yaml``).
        turns: timed turns in all (rounded up to whole calls).
        turns_per_call: utterances per call (each call a new caller).
        concurrency: calls in progress at once.
        think_s: seconds between an answer and the caller's next utterance.

    Returns:
        ``voice_turns``, ``voice_calls``, ``voice_concurrent_calls``,
        ``voice_turn_p50_ms`` / ``_p90_ms`` / ``_p99_ms`` / ``_max_ms`` (ms),
        ``voice_held_turns``, ``voice_greeting_p50_ms`` (ms),
        ``voice_turns_per_s``, CPU ms per turn of each process
        (``voice_cpu_ms_per_turn_<role>``, from ``/proc``), the machine's
        cores and 1-minute load average at the end, the target and whether p99 met it, the worker
        setup and where the children's logs are.

    Raises:
        click.ClickException: a child exited or an answer was wrong.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="laneway-bench-voice-"))
    calls = -(-turns // turns_per_call)
    with contextlib.ExitStack() as stacks:
        standin = Standin(log_dir)
        stacks.callback(standin.stop)
        stack = LanewayStack(tenants_file.read_text(), standin, log_dir)
        stacks.callback(stack.stop)
        _run_calls(stack.web_url, [f"+1559800{i:04d}" for i in range(WARMUP_CALLS)], WARMUP_TURNS, WARMUP_CALLS, think_s)
        cpu_before = stack.cpu_snapshot()
        started = time.perf_counter()
        results = _run_calls(stack.web_url, [f"+1559900{i:04d}" for i in range(calls)], turns_per_call, concurrency, think_s)
        elapsed_s = time.perf_counter() - started
        cpu_after = stack.cpu_snapshot()
        load_1m = os.getloadavg()[0]  # other work on the machine shows in the tail
        stack.supervisor.check()
    latencies = sorted(ms for r in results for ms in r["turns_ms"])
    greetings = sorted(r["greeting_ms"] for r in results)
    p99 = _percentile(latencies, 0.99)
    return {
        "voice_worker_setup": WORKER_SETUP,
        "voice_turns": len(latencies),
        "voice_calls": calls,
        "voice_concurrent_calls": concurrency,
        "voice_think_s": think_s,
        "voice_turn_p50_ms": round(_percentile(latencies, 0.50), 1),
        "voice_turn_p90_ms": round(_percentile(latencies, 0.90), 1),
        "voice_turn_p99_ms": round(p99, 1),
        "voice_turn_max_ms": round(latencies[-1], 1),
        "voice_turn_mean_ms": round(statistics.fmean(latencies), 1),
        "voice_held_turns": sum(r["held"] for r in results),
        "voice_greeting_p50_ms": round(_percentile(greetings, 0.50), 1),
        "voice_turns_per_s": round(len(latencies) / elapsed_s, 1),
        **{
            f"voice_cpu_ms_per_turn_{role.replace('-', '_')}": round((cpu_after[role] - cpu_before[role]) * 1000 / len(latencies), 2)
            for role in cpu_after
        },
        "voice_cores": os.cpu_count(),
        "voice_load_average_1m": round(load_1m, 2),
        "voice_target_p99_ms": TARGET_P99_MS,
        "voice_p99_met": p99 <= TARGET_P99_MS,
        "voice_logs": str(log_dir),
    }


@click.command("bench-voice")
@click.option("--turns", default=1000, show_default=True)
@click.option("--turns-per-call", default=10, show_default=True)
@click.option("--concurrency", default=CONCURRENT_CALLS, show_default=True)
@click.option("--think-s", default=THINK_S, show_default=True)
def bench_voice_command(turns: int, turns_per_call: int, concurrency: int, think_s: float) -> None:
    """Only the voice section of ``laneway bench`` (``python -m devtools.bench.voice``)."""
    import logging

    logging.disable(logging.INFO)
    results = bench_voice(Path(__file__).parents[2] / "tenants.example.yaml", turns, turns_per_call, concurrency, think_s)
    width = max(len(k) for k in results)
    for key, value in results.items():
        click.echo(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    bench_voice_command()
