"""The support desk's assignment and presence (issue 16), with real Redis, the real app and the real worker.

Escalations reach online operators by the tenant's policy (round robin,
least loaded with a limit, manual), longest waiting first; an operator coming
online or freeing capacity gets the oldest; an expired claim is reassigned;
each assignment is a note in the conversation and an audit entry; presence
comes from the live feed and lapses; and the decision holds under several
real processes assigning at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from jobs import desk
from jobs.claims import expire_claims_once
from state import keys as K
from state.assignment import AssignmentStore
from state.presence import HEARTBEAT_TTL_MS, PresenceStore
from state.takeover import key_fingerprint
from state.tenant_config import TenantConfig, sha256_hex
from tests.conftest import ROOT

pytestmark = pytest.mark.redis_server

ACME = "acme-insurance"
ACME_KEY = "dev-acme-api-key"
BASE = f"/api/v1/tenants/{ACME}"
CUSTOMERS = ["+15557650001", "+15557650002", "+15557650003"]


def headers(operator: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ACME_KEY}", "X-Operator": operator}


def conv(customer: str, suffix: str = "") -> str:
    return f"{BASE}/conversations/{quote(customer, safe='')}{suffix}"


@pytest.fixture
def use_desk(tenants, settings):
    def apply(**desk_cfg) -> TenantConfig:
        acme = tenants.get(ACME, cached=False)
        return tenants.save(TenantConfig.model_validate({**acme.model_dump(), "desk": desk_cfg}), settings.env)

    return apply


def online(client, *names: str) -> list[int]:
    answers = [client.put(f"{BASE}/desk/presence", json={"status": "online"}, headers=headers(n)) for n in names]
    assert all(a.status_code == 200 for a in answers), [a.get_json() for a in answers]
    return [a.get_json()["assigned"] for a in answers]


def escalate(post_sms, work, *customers: str) -> None:
    for customer in customers:
        post_sms("I want to talk to a person", customer)
        work()


def context(client, customer: str) -> dict:
    return client.get(conv(customer, "/context"), headers=headers("lead")).get_json()


def owners(client, *customers: str) -> list[str | None]:
    return [context(client, c)["owner_id"] for c in customers]


def desk_notes(client, customer: str) -> list[str]:
    return [n["text"] for n in context(client, customer)["notes"] if n["author_id"] == "desk"]


def test_round_robin_gives_escalations_in_turn_with_a_note_and_an_audit_entry(client, use_desk, post_sms, work, standin):
    use_desk(assignment={"policy": "round_robin"})
    online(client, "alice", "bob")
    escalate(post_sms, work, *CUSTOMERS)
    assert owners(client, *CUSTOMERS) == ["alice", "bob", "alice"]
    assert desk_notes(client, CUSTOMERS[1]) == ["Assigned to bob (round robin)."]
    # the customer was told once that a person will answer; the assignment itself says nothing to them
    assert [m["To"] for m in standin.messages()] == CUSTOMERS
    state = client.get(f"{BASE}/desk", headers=headers("alice")).get_json()
    assert {o["operator_id"]: (o["status"], o["load"]) for o in state["operators"]} == {"alice": ("online", 2), "bob": ("online", 1)}
    assert state["queue"] == [] and state["me"] == {"operator_id": "alice", "status": "online"}
    audit = client.get(f"{BASE}/audit?count=50", headers=headers("alice")).get_json()["entries"]
    assigned = [e for e in audit if e["credential"] == "desk"]
    assert len(assigned) == 3 and all(e["method"] == "ASSIGN" and "+1555" not in e["path"] for e in assigned)
    assert {e["detail"] for e in assigned} >= {"assigned to bob (round_robin; load 1)"}
    # the assignee holds the claim: they can reply, the AI stays silent
    standin.clear()
    assert client.post(conv(CUSTOMERS[1], "/reply"), json={"text": "Hi, Bob here."}, headers=headers("bob")).status_code == 202
    work()
    assert [m["Body"] for m in standin.messages()] == ["Hi, Bob here."]


def test_least_loaded_waits_for_capacity_and_gives_the_oldest_first(client, use_desk, post_sms, work, rt):
    use_desk(assignment={"policy": "least_loaded", "max_per_operator": 1})
    escalate(post_sms, work, *CUSTOMERS)  # nobody online: all wait, oldest first
    queue = client.get(f"{BASE}/desk", headers=headers("alice")).get_json()["queue"]
    assert [q["conversation_id"] for q in queue] == CUSTOMERS
    assert online(client, "alice") == [1]
    assert online(client, "bob") == [1]
    assert owners(client, *CUSTOMERS) == ["alice", "bob", None]
    assert AssignmentStore(rt.state_redis).loads(ACME) == {f"alice|{_fp()}": 1, f"bob|{_fp()}": 1}
    # alice frees capacity: the last one waiting is hers
    assert client.post(conv(CUSTOMERS[0], "/handback"), headers=headers("alice")).status_code == 202
    work()
    assert owners(client, *CUSTOMERS) == [None, "bob", "alice"]
    assert context(client, CUSTOMERS[0])["owner"] == "ai"
    assert desk_notes(client, CUSTOMERS[2]) == ["Assigned to alice (least loaded)."]


def _fp() -> str:
    return key_fingerprint(sha256_hex(ACME_KEY))


def test_an_away_operator_gets_nothing_and_an_expired_claim_is_reassigned(client, use_desk, post_sms, work, rt):
    use_desk(assignment={"policy": "round_robin"})
    online(client, "alice", "bob")
    assert client.put(f"{BASE}/desk/presence", json={"status": "away"}, headers=headers("bob")).status_code == 200
    escalate(post_sms, work, CUSTOMERS[0])
    assert owners(client, CUSTOMERS[0]) == ["alice"]
    online(client, "bob")
    # alice went quiet: her claim expires, it goes back to the queue and to bob
    report = expire_claims_once(rt, now_ms=int(time.time() * 1000) + 3600_000)
    assert report.expired == 1
    work()
    assert owners(client, CUSTOMERS[0]) == ["bob"]
    assert desk_notes(client, CUSTOMERS[0]) == [
        "Assigned to alice (round robin).", "alice's claim expired; back to the queue.", "Assigned to bob (round robin).",
    ]


def test_manual_policy_queues_until_claimed_and_a_claim_can_be_handed_to_a_colleague(client, use_desk, post_sms, work, standin):
    use_desk(assignment={"policy": "manual"})
    online(client, "alice", "bob")
    escalate(post_sms, work, CUSTOMERS[0])
    assert owners(client, CUSTOMERS[0]) == [None]
    assert [q["conversation_id"] for q in client.get(f"{BASE}/desk", headers=headers("alice")).get_json()["queue"]] == [CUSTOMERS[0]]
    assert client.post(conv(CUSTOMERS[0], "/claim"), headers=headers("alice")).status_code == 200
    state = client.get(f"{BASE}/desk", headers=headers("alice")).get_json()
    assert state["queue"] == [] and {o["operator_id"]: o["load"] for o in state["operators"]} == {"alice": 1, "bob": 0}
    # only the holder hands it over, only to someone online
    assert client.post(conv(CUSTOMERS[0], "/assign"), json={"operator_id": "bob"}, headers=headers("carol")).status_code == 409
    assert client.post(conv(CUSTOMERS[0], "/assign"), json={"operator_id": "dave"}, headers=headers("alice")).status_code == 409
    moved = client.post(conv(CUSTOMERS[0], "/assign"), json={"operator_id": "bob"}, headers=headers("alice"))
    assert moved.status_code == 200 and moved.get_json()["claimed_by"]["operator_id"] == "bob"
    work()
    assert owners(client, CUSTOMERS[0]) == ["bob"] and desk_notes(client, CUSTOMERS[0]) == ["Reassigned to bob by alice."]
    state = client.get(f"{BASE}/desk", headers=headers("alice")).get_json()
    assert {o["operator_id"]: o["load"] for o in state["operators"]} == {"alice": 0, "bob": 1}
    standin.clear()
    assert client.post(conv(CUSTOMERS[0], "/reply"), json={"text": "Bob here."}, headers=headers("bob")).status_code == 202
    assert client.post(conv(CUSTOMERS[0], "/reply"), json={"text": "Alice here."}, headers=headers("alice")).status_code == 409


@pytest.mark.parametrize("body, status", [
    ({"status": "busy"}, 400), ({"status": "online", "extra": 1}, 400), ({}, 400), ("online", 400),
])
def test_bad_presence_bodies_are_4xx(client, body, status):
    answer = client.put(f"{BASE}/desk/presence", json=body, headers=headers("alice"))
    assert answer.status_code == status and "PresenceBody" in answer.get_json()["error"]
    assert client.put(f"{BASE}/desk/presence", data="status=online", headers=headers("alice")).status_code == 415
    assert client.put(f"{BASE}/desk/presence", json={"status": "online"}, headers={"X-Operator": "x"}).status_code == 401
    other = {"Authorization": "Bearer dev-bright-api-key", "X-Operator": "alice"}
    assert client.put(f"{BASE}/desk/presence", json={"status": "online"}, headers=other).status_code == 404


def test_the_live_feed_makes_its_operator_present_until_the_heartbeat_lapses(client, app, use_desk, post_sms, work, rt):
    use_desk(assignment={"policy": "round_robin"})
    escalate(post_sms, work, CUSTOMERS[0])
    token = client.post(f"{BASE}/events/token", headers=headers("carol")).get_json()["token"]
    assert client.get(f"{BASE}/events?token={token}&operator=no|pipes").status_code == 400
    stream = client.get(f"{BASE}/events?token={token}&operator=carol", buffered=False)
    assert stream.status_code == 200
    next(stream.response)  # the stream is open: carol is online and gets what was waiting
    stream.close()
    assert owners(client, CUSTOMERS[0]) == ["carol"]
    now_ms = int(time.time() * 1000)
    [carol] = PresenceStore(rt.state_redis).operators(ACME, now_ms)
    assert (carol.operator_id, carol.status, carol.connected) == ("carol", "online", True)
    # no more heartbeats: past the TTL she is away and gets nothing new
    later = now_ms + HEARTBEAT_TTL_MS + 1
    assert PresenceStore(rt.state_redis).operators(ACME, later) == []
    escalate(post_sms, work, CUSTOMERS[1])
    AssignmentStore(rt.state_redis).unassign(ACME, CUSTOMERS[1], requeue=True, since_ms=now_ms)
    assert desk.assign_waiting(rt, rt.tenants.get(ACME), now_ms=later) == []
    assert AssignmentStore(rt.state_redis).queue(ACME) == [(CUSTOMERS[1], now_ms)]


def test_concurrent_assigning_processes_never_exceed_the_limit(r, redis_url, tmp_path: Path):
    """Six processes race to assign 60 escalations to 5 operators with room for 4 each."""
    store, presence = AssignmentStore(r), PresenceStore(r)
    now_ms = int(time.time() * 1000)
    conversations = [f"+1555800{i:04d}" for i in range(60)]
    for i, cid in enumerate(conversations):
        store.enqueue(ACME, cid, now_ms - 60_000 + i)
    operators = [f"op{i}" for i in range(5)]
    for name in operators:
        presence.heartbeat(ACME, name, "fp", now_ms, ttl_ms=600_000)
    procs = [
        subprocess.Popen([sys.executable, str(ROOT / "tests/support/assign_contender.py"), redis_url, ACME, "least_loaded", "4", str(tmp_path)],
                         cwd=ROOT)
        for _ in range(6)
    ]
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("ready.*"))) < len(procs):
        assert time.monotonic() < deadline, "contenders did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=60) for p in procs] == [0] * len(procs)
    made = [row for f in tmp_path.glob("made.*.json") for row in json.loads(f.read_text())]
    assert len([f for f in tmp_path.glob("made.*.json") if json.loads(f.read_text())]) >= 2  # a real race
    assert len(made) == 20
    assert len({cid for cid, _, _ in made}) == 20  # none given twice
    assert sorted(cid for cid, _, _ in made) == conversations[:20]  # the longest waiting
    per_operator = {name: sum(1 for _, op, _ in made if op == name) for name in operators}
    assert per_operator == {name: 4 for name in operators}
    assert all(load <= 4 for _, _, load in made)
    assert store.loads(ACME) == {f"{name}|fp": 4 for name in operators}
    assert [cid for cid, _ in store.queue(ACME)] == conversations[20:]
    assert r.hlen(K.desk_key(ACME, "assigned")) == 20
