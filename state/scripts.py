"""Lua scripts for the conversation keys.

Each script touches only the keys it is given in ``KEYS``, all of one
conversation (one hash tag, one cluster slot), and runs atomically.
"""

from __future__ import annotations

ACCEPT = """
-- Accept one inbound event: dedupe on the provider's id, append to the inbox.
-- KEYS[1] seen (zset: provider id -> accept time, ms)   KEYS[2] inbox
-- KEYS[3] (optional) unreachable: deleted, new event or repeat (the customer
-- wrote, so the number receives again)
-- ARGV[1] event JSON   ARGV[2] provider id   ARGV[3] dedupe TTL (ms)
-- ARGV[4] inbox TTL (ms)
-- Ids older than the dedupe TTL are trimmed first, so the set holds one
-- window of ids and expires a window after the last accept.
-- Returns the inbox length after the append (> 0) for a new event; for a
-- duplicate, minus the inbox length (0 when nothing waits), so the caller can
-- still enqueue a drain for entries a failed enqueue left behind.
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if KEYS[3] then
  redis.call('DEL', KEYS[3])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[3]))
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return -redis.call('LLEN', KEYS[2])
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local n = redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n
"""

ACQUIRE = """
-- Take the drain lease and read everything a turn needs, in one round trip.
-- KEYS[1] lease   KEYS[2] state   KEYS[3] inbox   KEYS[4] optout
-- ARGV[1] lease token   ARGV[2] lease TTL (ms)
-- Returns {0} when another worker holds the lease; {2} when the inbox is empty
-- (the lease is released again); else {1, version|false, doc|false, opted_out
-- (0/1), {inbox entries…}}.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0}
end
local inbox = redis.call('LRANGE', KEYS[3], 0, -1)
if #inbox == 0 then
  redis.call('DEL', KEYS[1])
  return {2}
end
local s = redis.call('HMGET', KEYS[2], 'version', 'doc')
return {1, s[1], s[2], redis.call('EXISTS', KEYS[4]), inbox}
"""

COMMIT = """
-- Commit one turn: fence on lease and version, write the document, consume the
-- inbox, queue outbound messages, refresh TTLs, release or keep the lease.
-- KEYS[1] state   KEYS[2] inbox   KEYS[3] outbox   KEYS[4] lease   KEYS[5] optout
-- KEYS[6] outbox_pending   KEYS[7] claim
-- ARGV[1] lease token   ARGV[2] expected version (0: new conversation)
-- ARGV[3] schema_version   ARGV[4] document JSON   ARGV[5] inbox entries consumed
-- ARGV[6] idle TTL (ms)   ARGV[7] lease TTL (ms)   ARGV[8] opt-out: set|clear|''
-- ARGV[9] '1': refuse while an operator holds the claim (the turn carries the AI's answer)
-- ARGV[10..] triples: message id, message JSON, '1' if it bypasses opt-out else ''
-- Returns {-1} lease lost; {-2, stored version} version conflict;
-- {-3, stored schema_version} stored schema is newer; {-4} claimed (ARGV[9]); else
-- {1, new version, {inbox entries left…}} (lease released when none are left).
if redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return {-1}
end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[2]) then
  return {-2, current}
end
local stored_schema = tonumber(redis.call('HGET', KEYS[1], 'schema_version') or '0')
if stored_schema > tonumber(ARGV[3]) then
  return {-3, stored_schema}
end
if ARGV[9] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then
  return {-4}
end
local version = current + 1
local ttl = ARGV[6]
redis.call('HSET', KEYS[1], 'version', version, 'schema_version', ARGV[3], 'doc', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('LTRIM', KEYS[2], tonumber(ARGV[5]), -1)
for i = 10, #ARGV, 3 do
  redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], 's:' .. ARGV[i], 'queued')
  if ARGV[i + 2] == '1' then
    redis.call('HSET', KEYS[3], 'b:' .. ARGV[i], '1')
  end
end
if #ARGV >= 10 then
  redis.call('PEXPIRE', KEYS[6], ttl)
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if ARGV[8] == 'set' then
  redis.call('SET', KEYS[5], '1')
elseif ARGV[8] == 'clear' then
  redis.call('DEL', KEYS[5])
end
local rest = redis.call('LRANGE', KEYS[2], 0, -1)
if #rest == 0 then
  redis.call('DEL', KEYS[4])
else
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
return {1, version, rest}
"""

RELEASE_LEASE = """
-- Release the lease if we still hold it.
-- KEYS[1] lease   ARGV[1] lease token.   Returns 1 if released, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

RENEW_LEASE = """
-- Extend the lease if we still hold it.
-- KEYS[1] lease   ARGV[1] lease token   ARGV[2] TTL (ms).   Returns 1 or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

CLAIM_OUTBOUND = """
-- Move one outbox entry queued -> sending (or -> suppressed for an opted-out
-- contact), so that only one delivery attempt ever sends it. A claim records
-- its time (c:<id>, ms) so a sending entry whose sender died can be found.
-- KEYS[1] outbox   KEYS[2] optout   KEYS[3] outbox_pending   ARGV[1] message id
-- ARGV[2] '1': the contact's consent record says opted out (state/consent.py: it
-- outlives the C:optout marker, which erasure deletes)
-- Returns {1, message JSON, claimed at (ms)} to send; {2, 'suppressed'}
-- suppressed now; {0, status|false} not claimable (already claimed, final,
-- or unknown).
local id = ARGV[1]
local status = redis.call('HGET', KEYS[1], 's:' .. id)
if status ~= 'queued' then
  return {0, status}
end
if (redis.call('EXISTS', KEYS[2]) == 1 or ARGV[2] == '1') and not redis.call('HGET', KEYS[1], 'b:' .. id) then
  redis.call('HSET', KEYS[1], 's:' .. id, 'suppressed')
  redis.call('HDEL', KEYS[1], 'b:' .. id, 'd:' .. id)
  redis.call('HDEL', KEYS[3], id)
  return {2, 'suppressed'}
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 's:' .. id, 'sending', 'c:' .. id, string.format('%d', now_ms))
return {1, redis.call('HGET', KEYS[3], id), now_ms}
"""

RECORD_SENT_EVIDENCE = """
-- Record the provider's evidence that entry ARGV[1] was sent as sid ARGV[2]
-- (Twilio's status callback to the entry's own StatusCallback URL). Kept
-- first-come in x:<id>; the reconcile reads it. Never moves the status.
-- KEYS[1] outbox   ARGV[1] message id   ARGV[2] provider message sid
-- Returns 1 recorded (or already the same), 0 unknown entry, -1 the sid is
-- another entry's.
local id = ARGV[1]
if not redis.call('HGET', KEYS[1], 's:' .. id) then
  return 0
end
local owner = redis.call('HGET', KEYS[1], 'q:' .. ARGV[2])
if owner and owner ~= id then
  return -1
end
redis.call('HSETNX', KEYS[1], 'x:' .. id, ARGV[2])
return 1
"""

RECORD_STATUS = """
-- Twilio's status callback for outbox entry ARGV[1]: record the sid as the
-- entry's evidence (as RECORD_SENT_EVIDENCE) and move the entry's Twilio
-- status t:<id> forward only, keeping the first ErrorCode in e:<id>.
-- Forward order: queued|accepted|scheduled 0 < sending 1 < sent 2 <
-- delivered 3 < read 4 | undelivered 4 | failed 4 | canceled 4; read,
-- undelivered, failed and canceled are final (nothing moves them). The
-- send state s:<id> (queued, sending, sent, failed, suppressed: Laneway's
-- own claim/finish) is never touched here.
-- Only the sid the entry currently holds moves it: once p:<id> is recorded,
-- another sid is stale; a sid recorded for the entry (q:<sid>) but no longer
-- its p:<id> was retired (a 63016 retry drops p:<id>). A stale callback
-- records nothing. Before any p:<id> (the callback overtook the sender's
-- finish) an unrecorded sid is evidence, as before.
-- KEYS[1] outbox   ARGV[1] message id   ARGV[2] provider message sid
-- ARGV[3] MessageStatus   ARGV[4] ErrorCode or ''
-- Returns {1, previous|''} moved; {2, current|''} not moved (not forward, or
-- an unknown status: evidence only); {0, ''} unknown entry; {-1, ''} the sid
-- is another entry's; {3, ''} the sid is not the entry's current one
-- (nothing recorded either way).
local id = ARGV[1]
if not redis.call('HGET', KEYS[1], 's:' .. id) then
  return {0, ''}
end
local owner = redis.call('HGET', KEYS[1], 'q:' .. ARGV[2])
if owner and owner ~= id then
  return {-1, ''}
end
local held = redis.call('HGET', KEYS[1], 'p:' .. id)
if (held and held ~= ARGV[2]) or (not held and owner) then
  return {3, ''}
end
redis.call('HSETNX', KEYS[1], 'x:' .. id, ARGV[2])
local rank = {queued = 0, accepted = 0, scheduled = 0, sending = 1, sent = 2, delivered = 3,
              read = 4, undelivered = 4, failed = 4, canceled = 4}
local current = redis.call('HGET', KEYS[1], 't:' .. id)
local new = rank[ARGV[3]]
if new == nil then
  return {2, current or ''}
end
if current and (rank[current] == nil or rank[current] >= 4 or rank[current] >= new) then
  return {2, current}
end
redis.call('HSET', KEYS[1], 't:' .. id, ARGV[3])
if ARGV[4] ~= '' and not redis.call('HGET', KEYS[1], 'e:' .. id) then
  redis.call('HSET', KEYS[1], 'e:' .. id, ARGV[4])
end
return {1, current or ''}
"""

FINISH_OUTBOUND = """
-- Compare-and-set an outbox entry's status. A final status (sent, failed,
-- suppressed) drops the message body and claim time: the transcript keeps
-- the text, the outbox keeps status and provider sid.
-- A provider sid is recorded for one entry only: q:<sid> names its entry,
-- and a sid already recorded for another entry is refused (nothing changes).
-- KEYS[1] outbox   KEYS[2] outbox_pending   ARGV[1] message id
-- ARGV[2] expected status   ARGV[3] new status   ARGV[4] provider message sid or ''
-- Returns 1 when set, 0 when the status was not ARGV[2], -1 when ARGV[4] is
-- another entry's sid.
local id = ARGV[1]
if redis.call('HGET', KEYS[1], 's:' .. id) ~= ARGV[2] then
  return 0
end
if ARGV[4] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'q:' .. ARGV[4])
  if owner and owner ~= id then
    return -1
  end
  redis.call('HSET', KEYS[1], 'p:' .. id, ARGV[4], 'q:' .. ARGV[4], id)
end
redis.call('HSET', KEYS[1], 's:' .. id, ARGV[3])
redis.call('HDEL', KEYS[1], 'c:' .. id)
if ARGV[3] ~= 'queued' and ARGV[3] ~= 'sending' then
  redis.call('HDEL', KEYS[1], 'b:' .. id)
  redis.call('HDEL', KEYS[2], id)
end
return 1
"""
