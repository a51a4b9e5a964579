"""Liveness and readiness against real Redis and a real RQ worker registration."""

from __future__ import annotations

import time

import pytest
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from jobs.queues import campaign_queue
from jobs.worker import LanewayWorker

pytestmark = pytest.mark.redis_server

MAX_AGE_S = 0.3


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"ready_max_queue_age_s": MAX_AGE_S})


@pytest.fixture
def registered_worker(r, rt):
    worker = LanewayWorker([rt.queue], connection=r, serializer=JSONSerializer)
    worker.register_birth()
    yield worker
    worker.register_death()


def test_not_ready_without_a_worker(client):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == {
        "queue_redis": True, "state_redis": True, "workers": False, "queue_age": True,
    }
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_ready_with_a_worker_until_a_job_waits_too_long(client, registered_worker, post_sms, work):
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok" and body["workers"] == 1 and body["oldest_job_age_s"] is None
    post_sms("hello", "+15557654321")
    time.sleep(MAX_AGE_S + 0.1)  # the drain job waits: nobody is working
    answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.get_json()["checks"]["queue_age"] is False
    assert answer.get_json()["oldest_job_age_s"] > MAX_AGE_S
    work()
    assert client.get("/readyz").status_code == 200


def test_a_campaign_job_waiting_too_long_is_a_warning_not_unreadiness(client, registered_worker, rt):
    campaign_queue(rt.queue).enqueue("time.sleep", 0)
    time.sleep(MAX_AGE_S + 0.1)
    answer = client.get("/readyz")
    body = answer.get_json()
    assert answer.status_code == 200 and body["checks"]["queue_age"] is True and "campaign_queue" in body["warnings"]
    assert body["campaign_oldest_job_age_s"] > MAX_AGE_S and body["oldest_job_age_s"] is None


def test_a_free_scheduler_lock_is_a_warning_not_unreadiness(client, registered_worker, rt, r):
    locks = [RQScheduler.get_locking_key(q.name) for q in (rt.queue, campaign_queue(rt.queue))]
    answer = client.get("/readyz")
    assert answer.status_code == 200
    warning = answer.get_json()["warnings"]["scheduler"]
    assert all(lock in warning for lock in locks)
    r.set(locks[0], "scheduler-1", ex=60)  # a scheduler holds the main queue's lock only
    warning = client.get("/readyz").get_json()["warnings"]["scheduler"]
    assert locks[1] in warning and locks[0] + "," not in warning
    r.set(locks[1], "scheduler-1", ex=60)
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.get_json()["warnings"] == {}


def test_the_worker_heartbeat_writes_rqs_keys_in_one_round_trip(registered_worker, r, monkeypatch):
    worker = registered_worker
    r.persist(worker.key)
    r.sadd(worker.executions_key, "job:execution")
    direct, pipelined = [], []
    monkeypatch.setattr(worker.connection, "execute_command", lambda *a, **k: direct.append(a))
    real_pipeline = worker.connection.pipeline

    def counting_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **k: pipelined.append(len(pipe.command_stack)) or execute(*a, **k)
        return pipe

    monkeypatch.setattr(worker.connection, "pipeline", counting_pipeline)
    worker.heartbeat(timeout=123)
    monkeypatch.undo()
    assert direct == [] and pipelined == [3]  # HSET, EXPIRE, EXPIRE: one round trip
    assert 0 < r.ttl(worker.key) <= 123 and 0 < r.ttl(worker.executions_key) <= 123
    assert r.hget(worker.key, "last_heartbeat")
