"""Eager migration: upcast every stored session document to the current schema.

Reads on the hot path already upcast old documents lazily (:mod:`state.upcast`)
and the next commit writes the current shape back. Conversations that never
see another turn would keep their old shape until they expire, so before an
upcaster can be deleted, :func:`migrate_states` walks the conversation
``state`` hashes with ``SCAN`` (never ``KEYS``) and writes each old document
back in the current shape.

Safety while workers run:

* every write is one Lua script (:data:`MIGRATE_STATE`) that writes only if
  ``version`` is still the one read and the stored ``schema_version`` is older
  than the new one, and bumps ``version`` by 1: a worker that loaded the old
  document fails its commit with a version conflict and redoes the turn, and a
  turn committed under us makes the migration re-read and retry that key;
* documents newer than this code (a rolling deploy) are counted, never written;
* corrupt documents are counted and logged (masked), and never stop the run;
* the SCAN cursor is persisted after each batch, so an interrupted run resumes
  where it stopped and re-scans at most one batch (writes are idempotent
  because of the version check).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError
from redis import Redis

from state import keys as K
from state.errors import SchemaTooNewError, StateError
from state.models import CURRENT_SCHEMA_VERSION, SessionState
from state.store import decode_document, encode_document
from state.upcast import upcast

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
"""Keys asked of each ``SCAN`` call (its ``COUNT`` hint) and read in one pipeline."""

MAX_CONFLICT_RETRIES = 3
"""Times one key is re-read and retried after a version conflict before it counts as failed."""

MIGRATE_STATE = """
-- Write an upcast session document if the conversation did not change since it
-- was read, fencing any worker that loaded the old document.
-- KEYS[1] state
-- ARGV[1] expected version   ARGV[2] new schema_version   ARGV[3] document JSON
-- Writes only if the hash exists, its version equals ARGV[1] and its stored
-- schema_version is older than ARGV[2]; then version becomes ARGV[1] + 1.
-- HSET keeps the key's TTL (the idle expiry is not extended by a migration).
-- Returns {1, new version} written; {0} the key is gone; {-1, stored version}
-- version conflict (-1 if unreadable); {-2, stored schema_version} the stored
-- document is already at or past ARGV[2].
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0') or -1
if current ~= tonumber(ARGV[1]) then
  return {-1, current}
end
local schema = tonumber(redis.call('HGET', KEYS[1], 'schema_version') or '0') or 0
if schema >= tonumber(ARGV[2]) then
  return {-2, schema}
end
local version = current + 1
redis.call('HSET', KEYS[1], 'version', version, 'schema_version', ARGV[2], 'doc', ARGV[3])
return {1, version}
"""

def _mask(key: str) -> str:
    keys = K.parse_state_key(key)
    return keys.label if keys is not None else f"{key[:12]}***"


@dataclass
class MigrationSummary:
    """What one :func:`migrate_states` run did (in a dry run: would have done).

    Attributes:
        scanned: conversation ``state`` keys read.
        upgraded: documents written back in the current shape.
        already_current: documents already at :data:`CURRENT_SCHEMA_VERSION`.
        conflicts_retried: version conflicts (a turn committed between read
            and write) after which the key was re-read and retried.
        too_new: documents newer than this code; never written.
        failed: corrupt documents, and keys still conflicting after
            :data:`MAX_CONFLICT_RETRIES` retries; logged with a masked key.
        finished: the scan reached its end (``False`` after ``max_batches``).
    """

    scanned: int = 0
    upgraded: int = 0
    already_current: int = 0
    conflicts_retried: int = 0
    too_new: int = 0
    failed: int = 0
    finished: bool = False


class _Corrupt(Exception):
    pass


def _plan(version: bytes | None, schema_version: bytes | None, doc: bytes | None) -> tuple[str, int, bytes | None]:
    """Decide what to do with one stored hash.

    Returns:
        ``(outcome, expected_version, stored document)`` with outcome
        ``current``, ``too_new``, ``gone`` or ``upgrade`` (only then the
        document, as :func:`encode_document` stores it).

    Raises:
        _Corrupt: the hash or its document cannot be read or upcast.
    """
    if doc is None and version is None and schema_version is None:
        return "gone", 0, None
    if doc is None:
        raise _Corrupt("no doc field")
    try:
        expected = int(version or 0)
        field_schema = int(schema_version or 0)
    except ValueError as exc:
        raise _Corrupt(f"non-integer version or schema_version: {exc}") from exc
    try:
        parsed: Any = decode_document(doc)
    except StateError as exc:
        raise _Corrupt(str(exc)) from exc
    if not isinstance(parsed, dict):
        raise _Corrupt("document is not a JSON object")
    doc_schema = parsed.get("schema_version")
    if field_schema > CURRENT_SCHEMA_VERSION or (isinstance(doc_schema, int) and doc_schema > CURRENT_SCHEMA_VERSION):
        return "too_new", expected, None
    if doc_schema == CURRENT_SCHEMA_VERSION and field_schema == CURRENT_SCHEMA_VERSION:
        return "current", expected, None
    if field_schema >= CURRENT_SCHEMA_VERSION:
        # The script would refuse the write forever: the hash and its document disagree.
        raise _Corrupt(f"hash says schema_version {field_schema}, document says {doc_schema!r}")
    try:
        state = SessionState.model_validate(upcast(parsed))
    except SchemaTooNewError:
        return "too_new", expected, None
    except (StateError, ValidationError) as exc:
        raise _Corrupt(f"cannot upcast: {exc.__class__.__name__}") from exc
    return "upgrade", expected, encode_document(state)


def _nodes(redis: Redis) -> list[tuple[str, Redis]]:
    """The clients to SCAN: the server itself, or every primary of a Redis Cluster."""
    get_primaries = getattr(redis, "get_primaries", None)
    if get_primaries is None:
        return [("standalone", redis)]
    return [(node.name, redis.get_redis_connection(node)) for node in get_primaries()]  # type: ignore[attr-defined]


def migrate_states(
    redis: Redis,
    *,
    tenant_id: str | None = None,
    dry_run: bool = False,
    batch: int = DEFAULT_BATCH,
    restart: bool = False,
    max_batches: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> MigrationSummary:
    """Upcast every stored session document (of one tenant, or all) to the current schema.

    Keys read: every ``lw:{<tenant>|<conversation>}:state`` hash (``SCAN MATCH``
    with ``COUNT batch``, then one pipelined ``HMGET`` of ``version``,
    ``schema_version``, ``doc`` per batch); written: each old document by the
    :data:`MIGRATE_STATE` script (atomic per key, version-checked, ``version``
    + 1, TTL kept), and the cursor hash ``lw:migrate:cursor:<tenant or *>``
    after each batch, deleted when the scan finishes. Not atomic as a whole:
    run it while workers serve traffic; a resumed or repeated run is harmless.

    Args:
        redis: bytes-mode client for the state Redis (a ``Redis``, or a
            ``RedisCluster`` whose primaries are scanned one by one).
        tenant_id: only this tenant's conversations; ``None`` for all.
        dry_run: read and upcast, count what would change, write nothing (not
            even the cursor). It starts from a saved cursor like a real run.
        batch: the ``SCAN COUNT`` hint and pipeline size.
        restart: ignore a saved cursor and scan from the start.
        max_batches: stop after this many batches (the cursor is saved, so a
            later call resumes); ``None`` runs to the end.
        on_batch: called with the number of keys of each processed batch
            (progress reporting).

    Returns:
        :class:`MigrationSummary`.

    Raises:
        ValueError: ``tenant_id`` is not a valid tenant id, or ``batch`` < 1.
        redis.RedisError: Redis failed; the saved cursor lets a rerun resume.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1: {batch}")
    match = K.state_scan_pattern(tenant_id)
    cursor_key = K.migrate_cursor(tenant_id)
    write = redis.register_script(MIGRATE_STATE)
    summary = MigrationSummary()
    if restart and not dry_run:
        redis.delete(cursor_key)
    saved = {} if restart else {k.decode(): v.decode() for k, v in redis.hgetall(cursor_key).items()}
    batches = 0
    for field, node in _nodes(redis):
        cursor = saved.get(field, "0")
        while cursor != "done":
            if max_batches is not None and batches >= max_batches:
                return summary
            next_cursor, keys = node.scan(cursor=int(cursor), match=match, count=batch)
            _migrate_batch(redis, write, sorted(k.decode() for k in keys), summary, dry_run)
            batches += 1
            cursor = str(int(next_cursor)) if int(next_cursor) else "done"
            if not dry_run:
                redis.hset(cursor_key, field, cursor)
            if on_batch is not None:
                on_batch(len(keys))
    if not dry_run:
        redis.delete(cursor_key)
    summary.finished = True
    log.info(
        "state migration %s%s: %s", tenant_id or "all tenants", " (dry run)" if dry_run else "", summary
    )
    return summary


def _read(redis: Redis, keys: list[str]) -> list[list[bytes | None]]:
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "version", "schema_version", "doc")
    return pipe.execute()


def _migrate_batch(redis: Redis, write, keys: list[str], summary: MigrationSummary, dry_run: bool) -> None:
    keys = [k for k in keys if K.parse_state_key(k) is not None]
    for key, fields in zip(keys, _read(redis, keys)):
        summary.scanned += 1
        _migrate_key(redis, write, key, fields, summary, dry_run)


def _migrate_key(redis: Redis, write, key: str, fields: list[bytes | None], summary: MigrationSummary, dry_run: bool) -> None:
    for attempt in range(MAX_CONFLICT_RETRIES + 1):
        try:
            outcome, expected, doc_json = _plan(*fields)
        except _Corrupt as exc:
            summary.failed += 1
            log.warning("state migration: %s is corrupt, left as is: %s", _mask(key), exc)
            return
        if outcome == "current":
            summary.already_current += 1
            return
        if outcome == "too_new":
            summary.too_new += 1
            return
        if outcome == "gone":
            summary.scanned -= 1  # expired or erased between SCAN and read
            return
        if dry_run:
            summary.upgraded += 1
            return
        reply = write(keys=[key], args=[expected, CURRENT_SCHEMA_VERSION, doc_json])
        code = int(reply[0])
        if code == 1:
            summary.upgraded += 1
            return
        if code == 0:
            summary.scanned -= 1
            return
        # -1: a turn committed since the read; -2: it also wrote the current shape.
        # Re-read and decide again: the retry sees "current" if a commit upgraded it.
        if attempt == MAX_CONFLICT_RETRIES:
            break
        summary.conflicts_retried += 1
        fields = redis.hmget(key, "version", "schema_version", "doc")
    summary.failed += 1
    log.warning("state migration: %s kept changing, gave up after %d retries", _mask(key), MAX_CONFLICT_RETRIES)
