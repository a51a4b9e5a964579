"""Eager schema migration (``state.migrate``) and ``laneway state migrate`` on a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from state import keys as K
from state import migrate
from state.keys import ConversationKeys
from state.migrate import migrate_states
from state.models import CURRENT_SCHEMA_VERSION, SessionState
from state.store import decode_document

pytestmark = pytest.mark.redis_server

V1 = json.loads((Path(__file__).parents[1] / "data" / "session_v1.json").read_text())
ACME, BRIGHT = "acme-insurance", "bright-clinic"
TTL_MS = 3_600_000


def _put(r, tenant_id: str, conversation_id: str, version: int, schema_version: int, doc: str) -> str:
    key = ConversationKeys(tenant_id, conversation_id).state
    r.hset(key, mapping={"version": version, "schema_version": schema_version, "doc": doc})
    r.pexpire(key, TTL_MS)
    return key


def _v1(tenant_id: str, conversation_id: str) -> str:
    return json.dumps(V1 | {"tenant_id": tenant_id, "conversation_id": conversation_id})


@pytest.fixture
def stored(r):
    """50 v1 (30 acme, 20 bright), 20 current (10 each), 1 corrupt (acme), 1 too new (bright).

    Returns ``{key: (kind, version)}``; unrelated keys sit beside them.
    """
    keys: dict[str, tuple[str, int]] = {}
    for i in range(50):
        tenant_id = ACME if i < 30 else BRIGHT
        conversation_id = f"+1555010{i:04d}" if i % 3 else f"whatsapp:+1555020{i:04d}"
        keys[_put(r, tenant_id, conversation_id, i + 1, 1, _v1(tenant_id, conversation_id))] = ("v1", i + 1)
    for i in range(20):
        tenant_id = ACME if i < 10 else BRIGHT
        doc = SessionState.new(tenant_id, f"+1555030{i:04d}").model_dump_json()
        keys[_put(r, tenant_id, f"+1555030{i:04d}", 7, CURRENT_SCHEMA_VERSION, doc)] = ("current", 7)
    keys[_put(r, ACME, "+15550409999", 3, 1, "{not json")] = ("corrupt", 3)
    too_new = json.dumps({"schema_version": 99, "tenant_id": BRIGHT, "conversation_id": "+15550419999"})
    keys[_put(r, BRIGHT, "+15550419999", 4, 99, too_new)] = ("too_new", 4)
    # Not state keys: never touched.
    r.rpush(ConversationKeys(ACME, "+15550100001").inbox, "x")
    r.set("lw:tenant:acme-insurance", "{}")
    return keys


def _snapshot(r, keys) -> dict[str, dict[bytes, bytes]]:
    return {k: r.hgetall(k) for k in keys}


def _assert_migrated(r, stored, tenants=(ACME, BRIGHT)):
    for key, (kind, version) in stored.items():
        stored_version, schema_version, doc = r.hmget(key, "version", "schema_version", "doc")
        in_scope = K.parse_state_key(key).tenant_id in tenants
        if kind == "v1" and in_scope:
            assert int(stored_version) == version + 1, key
            assert int(schema_version) == CURRENT_SCHEMA_VERSION
            state = SessionState.model_validate(decode_document(doc))
            assert state.slots == {"first_name": "Dana", "last_name": "Whitfield"}
            assert len(state.transcript) == 3
        else:
            assert int(stored_version) == version, key
        assert 0 < r.pttl(key) <= TTL_MS


def test_migrates_every_old_document_once_and_counts_the_rest(r, stored, caplog):
    summary = migrate_states(r, batch=10)
    assert (summary.scanned, summary.upgraded, summary.already_current) == (72, 50, 20)
    assert (summary.conflicts_retried, summary.too_new, summary.failed) == (0, 1, 1)
    assert summary.finished
    _assert_migrated(r, stored)
    assert r.get("lw:tenant:acme-insurance") == b"{}"
    assert not r.exists(K.migrate_cursor(None))
    assert "+15550409999" not in caplog.text and "***9999" in caplog.text  # corrupt key logged, masked

    again = migrate_states(r, batch=10)
    assert (again.upgraded, again.already_current, again.too_new, again.failed) == (0, 70, 1, 1)


def test_dry_run_writes_nothing(r, stored):
    before = _snapshot(r, stored)
    dbsize = r.dbsize()
    summary = migrate_states(r, batch=10, dry_run=True)
    assert (summary.scanned, summary.upgraded, summary.already_current, summary.too_new, summary.failed) == (
        72, 50, 20, 1, 1,
    )
    assert _snapshot(r, stored) == before
    assert r.dbsize() == dbsize  # not even a cursor


def test_dry_run_interrupted_saves_no_cursor(r, stored):
    summary = migrate_states(r, batch=5, dry_run=True, max_batches=1)
    assert not summary.finished
    assert not r.exists(K.migrate_cursor(None))


def test_tenant_filter(r, stored):
    summary = migrate_states(r, tenant_id=ACME, batch=10)
    assert (summary.scanned, summary.upgraded, summary.already_current, summary.too_new, summary.failed) == (
        41, 30, 10, 0, 1,
    )
    _assert_migrated(r, stored, tenants=(ACME,))


def test_tenant_pattern_escapes_glob_characters():
    assert K.state_scan_pattern(None) == "lw:{*|*}:state"
    assert K.state_scan_pattern("acme") == "lw:{acme|*}:state"
    assert K.state_scan_pattern("a*c?[x]") == r"lw:{a\*c\?\[x\]|*}:state"
    with pytest.raises(ValueError):
        K.state_scan_pattern("a|b")


def test_interrupted_run_resumes_from_the_saved_cursor(r, stored):
    first = migrate_states(r, batch=10, max_batches=1)
    assert not first.finished
    assert 0 < first.scanned < 72
    assert r.exists(K.migrate_cursor(None))

    rest = migrate_states(r, batch=10)
    assert rest.finished
    assert first.upgraded + rest.upgraded == 50  # each old document written exactly once
    assert first.scanned + rest.scanned == 72  # no rehash on a quiet db: no key seen twice
    _assert_migrated(r, stored)
    assert not r.exists(K.migrate_cursor(None))


def test_restart_ignores_the_saved_cursor(r, stored):
    migrate_states(r, batch=10, max_batches=1)
    again = migrate_states(r, batch=10, restart=True)
    assert again.scanned == 72 and again.finished
    _assert_migrated(r, stored)


def test_conflict_is_retried_and_counted(r, stored, monkeypatch):
    """A turn commits between the migration's read and its write: re-read, retry, no lost update."""
    victim = next(k for k, (kind, _) in stored.items() if kind == "v1")
    real_upcast = migrate.upcast
    bumped = []

    def upcast_then_commit(doc):
        if doc["conversation_id"] == K.parse_state_key(victim).conversation_id and not bumped:
            bumped.append(True)
            r.hincrby(victim, "version", 1)  # another worker committed (still a v1 document)
        return real_upcast(doc)

    monkeypatch.setattr(migrate, "upcast", upcast_then_commit)
    summary = migrate_states(r, batch=10)
    assert summary.conflicts_retried == 1
    assert (summary.upgraded, summary.failed) == (50, 1)
    assert int(r.hget(victim, "version")) == stored[victim][1] + 2  # the commit's bump, then ours
    assert int(r.hget(victim, "schema_version")) == CURRENT_SCHEMA_VERSION


def test_conflict_with_a_commit_that_upgraded_counts_as_current(r, stored, monkeypatch):
    victim = next(k for k, (kind, _) in stored.items() if kind == "v1")
    real_upcast = migrate.upcast

    def upcast_then_commit(doc):
        result = real_upcast(doc)
        if doc["conversation_id"] == K.parse_state_key(victim).conversation_id and int(r.hget(victim, "schema_version")) != CURRENT_SCHEMA_VERSION:
            current = SessionState.model_validate(result).model_dump_json()
            r.hset(victim, mapping={"version": int(r.hget(victim, "version")) + 1, "schema_version": CURRENT_SCHEMA_VERSION, "doc": current})
        return result

    monkeypatch.setattr(migrate, "upcast", upcast_then_commit)
    summary = migrate_states(r, batch=10)
    assert (summary.conflicts_retried, summary.upgraded, summary.already_current) == (1, 49, 21)


def test_cli_migrate(r, redis_url, stored, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("LANEWAY_STATE_REDIS_URL", raising=False)
    dry = CliRunner().invoke(main, ["state", "migrate", "--dry-run", "--batch", "10", "--tenant", BRIGHT])
    assert dry.exit_code == 0, dry.output
    assert "scanned 31, would upgrade 20, already current 10" in dry.output
    assert "too new 1, failed 0" in dry.output

    result = CliRunner().invoke(main, ["state", "migrate", "--batch", "10"])
    assert result.exit_code == 1, result.output  # the corrupt document is reported
    assert "scanned 72, upgraded 50, already current 20, conflicts retried 0, too new 1, failed 1" in result.output
    _assert_migrated(r, stored)


def test_cli_rejects_a_bad_tenant(r, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(main, ["state", "migrate", "--tenant", "a|b"])
    assert result.exit_code == 2
    assert "--tenant" in result.output


def test_hash_and_document_disagreeing_is_corrupt_not_a_conflict(r):
    key = _put(r, ACME, "+15550500001", 2, CURRENT_SCHEMA_VERSION, _v1(ACME, "+15550500001"))
    summary = migrate_states(r)
    assert (summary.scanned, summary.failed, summary.conflicts_retried, summary.upgraded) == (1, 1, 0, 0)
    assert r.hget(key, "version") == b"2"


def test_migrates_on_a_redis_cluster(cluster):
    """Each primary is scanned with its own saved cursor; writes go through the cluster client."""
    for i in range(30):
        tenant_id = ACME if i % 2 else BRIGHT
        _put(cluster, tenant_id, f"+1555060{i:04d}", 1, 1, _v1(tenant_id, f"+1555060{i:04d}"))
    first = migrate_states(cluster, batch=5, max_batches=1)
    assert not first.finished
    rest = migrate_states(cluster, batch=5)
    assert rest.finished
    assert first.upgraded + rest.upgraded == 30
    assert not cluster.exists(K.migrate_cursor(None))
    again = migrate_states(cluster, batch=5)
    assert (again.scanned, again.already_current, again.upgraded) == (30, 30, 0)
