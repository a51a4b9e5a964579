"""No phone number or message body in logs, stored RQ jobs or failure records.

A sentinel customer number and a sentinel message body go through the whole
pipeline (signed webhook, drain, delivery through the official twilio client,
a failing drain). Every log record at INFO and above, from every logger, and
every RQ job hash left in Redis (arguments, results, the failure's traceback)
is searched for them.
"""

from __future__ import annotations

import logging

import pytest

from state import keys as K

pytestmark = pytest.mark.redis_server

SENTINEL_NUMBER = "+15559876543"
SENTINEL_BODY = "SENTINEL-BODY-7f3a What are your opening hours?"
SENTINELS = (SENTINEL_NUMBER, SENTINEL_NUMBER[1:], SENTINEL_NUMBER[-7:], "SENTINEL-BODY-7f3a")


def _rq_records(r, queue) -> str:
    """Everything RQ keeps about every job: arguments, description, results, failure tracebacks."""
    ids = set(queue.job_ids) | set(queue.finished_job_registry.get_job_ids()) | set(queue.failed_job_registry.get_job_ids())
    texts = []
    for job in filter(None, (queue.fetch_job(i) for i in ids)):
        texts += [repr(job.args), repr(job.kwargs), job.description or "", repr(job.meta)]
        texts += [f"{result.type} {result.return_value!r} {result.exc_string or ''}" for result in job.results()]
    for key in r.scan_iter(match="rq:*"):  # and the raw keys, in case a field was missed above
        kind = r.type(key)
        if kind == b"hash":
            texts += [v.decode(errors="replace") for v in r.hgetall(key).values()]
        elif kind == b"stream":
            texts += [repr(fields) for _, fields in r.xrange(key)]
    return "\n".join(texts)


def test_sentinels_appear_in_no_log_line_job_or_failure_record(post_sms, work, r, rt, standin, tenants, caplog):
    caplog.set_level(logging.INFO)
    post_sms(SENTINEL_BODY, SENTINEL_NUMBER)
    work()
    assert [m["To"] for m in standin.messages()] == [SENTINEL_NUMBER]  # it really went through

    # A drain that fails: the tenant vanished after the message was accepted.
    post_sms(SENTINEL_BODY + " again", SENTINEL_NUMBER)
    r.delete(K.tenant("acme-insurance"))
    work()
    assert rt.queue.failed_job_registry.count == 1

    logged = "\n".join(f"{rec.name} {rec.getMessage()} {rec.exc_text or ''}" for rec in caplog.records if rec.levelno >= logging.INFO)
    stored = _rq_records(r, rt.queue)
    assert "StateError" in stored and "Traceback" in stored  # the failure record is among them
    for sentinel in SENTINELS:
        assert sentinel not in logged, sentinel
        assert sentinel not in stored, sentinel
