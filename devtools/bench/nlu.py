"""``laneway bench --only nlu``: what understanding a message costs a turn (pure CPU, no Redis).

Figures:

* ``nlu_warm_s``: :func:`agents.nlu.warm` for the example tenants (imports,
  one classifier training per tenant, the language detectors), what a worker
  pays once at start.
* ``nlu_train_ms``: training one tenant's intent classifier (median of 5).
* ``nlu_p50_ms`` / ``nlu_p99_ms`` / ``nlu_mean_ms``: :func:`agents.nlu.understand`
  per message over :data:`MESSAGE_MIX` (a realistic mix of what customers send:
  greetings, yes/no, names, numbers, dates, emails, questions, complaints,
  English and Spanish), each message ``repeats`` times, for Acme (languages
  English and Spanish), after warming, with the per-text caches of
  :mod:`agents.text` emptied before each message (a real turn's text is new).
* ``nlu_cpu_p50_ms`` / ``nlu_cpu_p99_ms``: the same in CPU time of the
  thread (``time.thread_time_ns``), which a busy machine does not inflate.
* ``nlu_dated_p50_ms``: the same over the messages holding a date (they reach
  ``dateparser``; about one message in ten of the mix).
"""

from __future__ import annotations

import statistics
import time
from typing import Final

from state.tenant_config import TenantConfig, parse_tenants_yaml

MESSAGE_MIX: Final[tuple[str, ...]] = (
    "Hi", "hello, I want life insurance", "Hi I'm Dana Whitfield, dana@example.com, want life insurance",
    "yes", "yeah that's my cell", "ok do it", "no", "Smith", "my name is Maria Lopez", "555-123-4567",
    "my number is (555) 222-3333", "What are your opening hours?", "how much does it cost?",
    "do I need a medical exam", "thanks!", "thank you so much", "can I talk to a person",
    "your app keeps crashing", "I meant Jon, not John", "actually my number is 555 444 1212",
    "born 3/4/1985", "my birthday is March 4, 1985", "I'm 5'9 and want 500k of coverage", "42",
    "resend the link", "I didn't get the link", "what does beneficiary mean", "ok", "cool", "one sec",
    "done", "hola quiero un seguro de vida", "sí", "gracias", "¿cuánto cuesta?", "me llamo Ana García",
    "no me llegó el enlace", "quiero hablar con una persona", "stop texting me", "STOP",
)  # fmt: skip
"""Messages as customers send them, in the proportions a day of conversations has (roughly)."""


def _tenants(tenants_yaml: str) -> list[TenantConfig]:
    return parse_tenants_yaml(tenants_yaml).tenants


def _percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


def bench_nlu(tenants_yaml: str, repeats: int = 50) -> dict:
    """Return the NLU figures (see the module docstring) for the tenants of ``tenants_yaml``.

    Args:
        tenants_yaml: the tenants file's text (the example tenants).
        repeats: how many times each message of :data:`MESSAGE_MIX` is understood.
    """
    started = time.perf_counter()
    from agents.nlu import understand, warm
    from agents.nlu.classifier import IntentClassifier, training_set
    from agents.text import forget_texts

    tenants = _tenants(tenants_yaml)
    acme = next(t for t in tenants if t.tenant_id == "acme-insurance")
    languages = tuple(getattr(acme, "languages", None) or ("en", "es"))
    if len(languages) == 1:
        languages = ("en", "es")
    warm(tenants, languages=languages)
    warm_s = time.perf_counter() - started
    examples = training_set(acme)
    trainings = []
    for _ in range(5):
        begun = time.perf_counter()
        IntentClassifier(examples)
        trainings.append((time.perf_counter() - begun) * 1000)
    timings: list[float] = []
    cpu: list[float] = []
    dated: list[float] = []
    for _ in range(repeats):
        for text in MESSAGE_MIX:
            forget_texts()  # every real turn's text is new: no help from the per-text caches
            begun, begun_cpu = time.perf_counter_ns(), time.thread_time_ns()
            result = understand(text, acme, languages=languages)
            elapsed_ms = (time.perf_counter_ns() - begun) / 1e6
            cpu.append((time.thread_time_ns() - begun_cpu) / 1e6)
            timings.append(elapsed_ms)
            if result.entities.dates:
                dated.append(elapsed_ms)
    timings.sort()
    cpu.sort()
    return {
        "nlu_warm_s": round(warm_s, 2),
        "nlu_train_ms": round(statistics.median(trainings), 1),
        "nlu_messages": len(timings),
        "nlu_p50_ms": round(_percentile(timings, 0.5), 3),
        "nlu_p99_ms": round(_percentile(timings, 0.99), 3),
        "nlu_mean_ms": round(statistics.fmean(timings), 3),
        "nlu_cpu_p50_ms": round(_percentile(cpu, 0.5), 3),
        "nlu_cpu_p99_ms": round(_percentile(cpu, 0.99), 3),
        "nlu_dated_p50_ms": round(statistics.median(dated), 3) if dated else None,
    }
