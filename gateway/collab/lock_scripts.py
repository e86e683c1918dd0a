"""The Redis scripts of section locks (gateway/collab/locks.py): each change to a lock key and
the letter's index `locks:<letterId>` happens in one script, so every instance sees them change
together."""

import json
from collections.abc import Mapping
from typing import Any

from gateway.redis_lua import NOW
from gateway.restored import MARKED, SAME

INDEX_SLACK_S = 120  # the index outlives its newest lock this long: time to announce expiries
SWEEP_EVERY_MS = 5000  # a letter with locks is looked at by some instance at least this often
DUE = "locks-due"  # zset: letter index -> ms when some instance should next sweep it

# `locks:<letterId>` hash, section -> the lock's value: the letter's index, written with the
# lock key in one script. A release deletes the entry and a timeout leaves it behind, so an
# entry whose key is gone is a lock that expired; whoever deletes it (LAPSE, LIST or ACQUIRE)
# logs `lock.expired`, exactly once across instances. The index's TTL bounds what is never
# claimed (no instance ran).
# Every script that writes an index entry also puts the letter into DUE (KEYS[3]) within
# SWEEP_EVERY_MS, so the sweep of any instance finds it: the lock's state lives in Redis, not
# in the memory of the instance that granted it. Times are Redis' (TIME: gateway/redis_lua.py),
# one clock for all.
KEEP_INDEX = (
    NOW
    + """
local function keep(ms)
  if redis.call('PTTL', KEYS[2]) < tonumber(ms) then redis.call('PEXPIRE', KEYS[2], ms) end
  redis.call('ZADD', KEYS[3], 'LT', now_ms() + """
    + str(SWEEP_EVERY_MS)
    + """, KEYS[2])
end
"""
)
# KEYS: lock, index, due, restored marker; ARGV: section, value, ttl_s, index ms. nil if held;
# 0 if free but the marker is missing or names another Redis process (Redis lost its locks, or
# came back from an older snapshot: no grant before the restore, gateway/restored.py); else the
# lapsed entry it replaced ('' if none). A held key answers nil before the marker is read: a
# renewal (its holder's, every few minutes per open section) pays no INFO.
ACQUIRE = (
    KEEP_INDEX
    + MARKED
    + """
if redis.call('EXISTS', KEYS[1]) == 0 and not marked(KEYS[4]) then return 0 end
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then return false end
local lapsed = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
keep(ARGV[4])
return lapsed or ''
"""
)
# Compare-and-set / compare-and-delete on the exact value we read: no lost updates. Both return
# 0 if the value changed, else the ms the old value had left (for RESTORE); UNMARKED, changing
# nothing, unless the marker names the process the caller saw (`same`, gateway/restored.py: no
# INFO): an older snapshot may hold a lock its holder released since (and another took), whose
# renewal would make him its holder again in the log (the caller looks again, then 503s).
# KEYS: lock, index, due, restored marker; ARGV: current, value, ttl_s, section, index ms,
# run_id and LASTSAVE seen.
UNMARKED = -1
RENEW = (
    KEEP_INDEX
    + SAME
    + """
if not same(KEYS[4], ARGV[6], ARGV[7]) then return -1 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
keep(ARGV[5])
return math.max(left, 1)
"""
)
# KEYS: lock, index, restored marker; ARGV: current, section, run_id and LASTSAVE seen.
RELEASE = (
    SAME
    + """
if not same(KEYS[3], ARGV[3], ARGV[4]) then return -1 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return math.max(left, 1)
"""
)
# Undoing what a request did in Redis when logging it failed (the caller answers 503), so that
# Redis and the log agree: no lock without its `lock.acquired`, no `lock.expired` lost.
# UNACQUIRE: our new lock goes, and the lapsed entry ACQUIRE claimed (if any, and not yet
# announced) goes back into the index for a later sweep, acquisition or listing to announce.
# KEYS: lock, index, due; ARGV: value, section, lapsed entry or '', index ms.
UNACQUIRE = (
    KEEP_INDEX
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('HGET', KEYS[2], ARGV[2]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  keep(ARGV[4])
end
return 1
"""
)
# RESTORE: the value a renewal replaced or a release deleted, back with the time it had left,
# unless the lock changed since. KEYS: lock, index, due; ARGV: what the request left ('' after a
# release), old value, ms left, section, index ms.
RESTORE = (
    KEEP_INDEX
    + """
local now, entry = redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[4])
if ARGV[1] == '' then
  if now or entry then return 0 end
elseif now ~= ARGV[1] or entry ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
keep(ARGV[5])
return 1
"""
)
# UNCLAIM: a lapsed entry LAPSE or LIST claimed, back into the index while the section is
# still free and unlisted. KEYS: lock, index, due; ARGV: section, entry, index ms.
UNCLAIM = (
    KEEP_INDEX
    + """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
keep(ARGV[3])
return 1
"""
)
# The users a live gateway vouches for on a letter: user id -> true, from its attending zset
# (members `["<userId>", "<gatewayId>"]`, scored by when the vouch lapses: gateway/live/
# attendance.py).
ATTENDING = """
local function attending(key, now)
  local users = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf')) do
    local ok, pair = pcall(cjson.decode, m)
    if ok and type(pair) == 'table' and type(pair[1]) == 'string' then users[pair[1]] = true end
  end
  return users
end
"""
# PRESENT: whether a user is on the letter now, for a lock's `attended`: in the projector's
# presence, or vouched for by a live gateway (the projector may lag). KEYS: presence,
# attending; ARGV: user. 1 or 0.
PRESENT = (
    NOW
    + ATTENDING
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
if attending(KEYS[2], now_ms())[ARGV[1]] then return 1 end
return 0
"""
)
# KEYS: lock, index, restored marker; ARGV: section. The entry of a lock that timed out,
# claimed; else nil. 0 if the lock is missing and the marker missing or stale: Redis lost its
# locks and the restore may bring this one back (a release now would be undone: it waits, as
# grants do).
LAPSE = (
    MARKED
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if not marked(KEYS[3]) then return 0 end
local lapsed = redis.call('HGET', KEYS[2], ARGV[1])
if lapsed then redis.call('HDEL', KEYS[2], ARGV[1]) end
return lapsed
"""
)
# Lua defining `held_back(key)`, for the scripts that claim or release what an older snapshot
# may have brought back (LIST, SWEEP): whether the marker at `key` is missing or stale, read at
# the first call only (its INFO is paid once per script, and only by one with something to do).
HELD_BACK = (
    MARKED
    + """
local unmarked = nil
local function held_back(key)
  if unmarked == nil then unmarked = not marked(key) end
  return unmarked
end
"""
)
# KEYS: restored marker, index, then the sections' lock keys; ARGV: the sections, then the
# run_id and LASTSAVE seen. {{section, value, ...} held, {section, value, ...} lapsed (claimed)};
# UNMARKED unless the marker names the process the caller saw (`same`): Redis may have lost
# locks (a wiped index lists none) or be an older snapshot's, so the caller looks, then 503s.
# A lapsed entry is left unclaimed while the marker is missing or stale (`held_back`, for a
# restart within the second of a save, which `same` misses): an older snapshot may have brought
# back one whose expiry is logged already, which the restore removes.
LIST = (
    HELD_BACK
    + SAME
    + """
local n = #ARGV - 2
if not same(KEYS[1], ARGV[n + 1], ARGV[n + 2]) then return -1 end
local held, lapsed = {}, {}
for i = 1, n do
  local section = ARGV[i]
  local value = redis.call('GET', KEYS[i + 2])
  if value then
    table.insert(held, section); table.insert(held, value)
  else
    local entry = redis.call('HGET', KEYS[2], section)
    if entry and not held_back(KEYS[1]) then
      redis.call('HDEL', KEYS[2], section)
      table.insert(lapsed, section); table.insert(lapsed, entry)
    end
  end
end
return {held, lapsed}
"""
)

# The sweep, on every instance, of the letters with locks (README "Section locks").
# CLAIM: up to ARGV[1] letters due now, each put ARGV[2] ms ahead so that the other instances'
# sweeps skip them meanwhile (if this one dies mid-sweep, another takes them after that).
# KEYS: due. The claimed letters' index keys.
CLAIM = (
    NOW
    + """
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, index in ipairs(due) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), index) end
return due
"""
)
# SWEEP, one letter, in one script so that whichever instance runs it acts once: each entry of
# the index whose lock key is gone is claimed (lapsed: the caller logs `lock.expired`); each
# lock taken while its holder was on the letter (`attended`) whose holder has had no presence
# for ARGV[2] ms is released (the caller logs `lock.expired`). When the holder was first found
# gone is the `away` hash (section -> "<lock's n> <ms>"), so any instance goes on counting from
# there; a renewed or new lock (another n) starts again. Then the letter's next look in DUE:
# within SWEEP_EVERY_MS while an attended lock is held, else at its locks' expiry; out of DUE
# once the index is empty. Lock keys are ARGV[1] (`lock:<letterId>:`) and the section, as
# the index names them, read here so that a section added meanwhile is not missed.
# A holder a live gateway vouches for (`attending:<letterId>`, KEYS[6]: gateway/live/attendance.py;
# its members' scores are when each gateway's vouch lapses) is here, whatever presence says: the
# projector's presence and connections lag while it is down or behind, and a holder whose gateway
# died and who reconnected through another one must not count as gone meanwhile. Otherwise:
# a holder in presence is gone all the same when each of his connections to the letter (the
# projector's `letter:<letterId>:connections`, `connection:<connId>` userId and gateway) is on a
# gateway whose heartbeat `gateway:<id>:alive` is missing: a dead gateway's users stay in
# presence until the projector reaps them (stale_after_s after the heartbeat lapsed), and the
# count starts at the heartbeat's loss, not at the reap. One connection on a live gateway (he
# reconnected elsewhere), or none known (an unnamed gateway, records not written yet): presence
# decides, as before. Those keys are named from ARGV[3..5] (`connection:`, and what surrounds
# the gateway id in `gateway:<id>:alive`), like the lock keys.
# Nothing is claimed, released or counted as gone while the restored marker (KEYS[7]) is missing
# or stale: Redis lost its locks or came back from an older snapshot, whose entries may be of
# expiries logged already and whose keys may be of locks the log says are released or another's
# (the restore, tools/backfill_locks.py, sets them to the log's word). The marker is read only
# when there is something to claim or release (its INFO is not paid per look), before anything
# is; then the answer is 0 and the letter is due again in SWEEP_EVERY_MS.
# KEYS: index, presence, away, due, connections, attending, restored marker; ARGV: lock key
# prefix, ms after leaving, connection key prefix, alive key head, alive key tail, and '1' when
# the caller knows the marker holds the letter back (a round's earlier letter found it so: the
# marker is the whole Redis', so its INFO is not paid again).
# {{section, entry, ...} lapsed (claimed), {section, value, ms it had left, ...} released}, or 0.
SWEEP = (
    NOW
    + ATTENDING
    + HELD_BACK
    + """
if ARGV[6] == '1' then unmarked = true end
local now, every, after = now_ms(), """
    + str(SWEEP_EVERY_MS)
    + """, tonumber(ARGV[2])
local lapsed, released, next_at = {}, {}, nil
local function again()
  redis.call('ZADD', KEYS[4], now + every, KEYS[1])
  return 0
end
local function look_at(at) if next_at == nil or at < next_at then next_at = at end end
-- user -> true: a connection on a live gateway, false: connections on dead ones only (read once)
local on_live, vouched = nil, nil
local function here(user)
  if vouched == nil then vouched = attending(KEYS[6], now) end
  if vouched[user] then return true end
  if redis.call('HEXISTS', KEYS[2], user) == 0 then return false end
  if on_live == nil then
    on_live = {}
    local alive = {}
    for _, conn in ipairs(redis.call('SMEMBERS', KEYS[5])) do
      local f = redis.call('HMGET', ARGV[3] .. conn, 'userId', 'gateway')
      local uid, gw = f[1], f[2] or ''
      if uid then
        if alive[gw] == nil then  -- '' (no gateway named): never reaped, so never dead
          alive[gw] = gw == '' or redis.call('EXISTS', ARGV[4] .. gw .. ARGV[5]) == 1
        end
        on_live[uid] = on_live[uid] or alive[gw]
      end
    end
  end
  return on_live[user] ~= false
end
local index = redis.call('HGETALL', KEYS[1])
for i = 1, #index, 2 do
  local section, entry = index[i], index[i + 1]
  local key = ARGV[1] .. section
  local value = redis.call('GET', key)
  local ok, held = false, nil
  if value then ok, held = pcall(cjson.decode, value) end
  if not value then
    if held_back(KEYS[7]) then return again() end
    redis.call('HDEL', KEYS[1], section)
    redis.call('HDEL', KEYS[3], section)
    table.insert(lapsed, section); table.insert(lapsed, entry)
  elseif not (ok and type(held) == 'table' and held.attended == true
              and type(held.id) == 'string' and type(held.n) == 'string') then
    local left = redis.call('PTTL', key)
    look_at(left > 0 and now + left + 1 or now + every)
  elseif here(held.id) then
    redis.call('HDEL', KEYS[3], section)
    look_at(now + every)
  else
    if held_back(KEYS[7]) then return again() end
    local since, mark = now, redis.call('HGET', KEYS[3], section)
    local n, at = nil, nil
    if mark then n, at = string.match(mark, '^(%S+) (%d+)$') end
    if n == held.n then since = tonumber(at) else
      redis.call('HSET', KEYS[3], section, held.n .. ' ' .. now)
    end
    if now - since >= after then
      local left = redis.call('PTTL', key)
      redis.call('DEL', key)
      redis.call('HDEL', KEYS[1], section)
      table.insert(released, section); table.insert(released, value)
      table.insert(released, math.max(left, 1))
    else
      look_at(math.min(now + every, since + after))
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[4], KEYS[1])
  redis.call('DEL', KEYS[3])
else
  redis.call('ZADD', KEYS[4], next_at or now + every, KEYS[1])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('PEXPIRE', KEYS[3], math.max(redis.call('PTTL', KEYS[1]), 1))
  end
end
return {lapsed, released}
"""
)


def lock_value(holder: Mapping[str, Any], expires_at: float, n: str, attended: bool) -> str:
    """A lock key's value, and its index entry: the holder (UserRef's fields), when it expires
    (seconds since the epoch), `n` telling a grant from a renewal (the sweep's away marks), and
    whether it was taken while its holder was on the letter (SWEEP reads `attended`)."""
    return json.dumps({**holder, "expires_at": expires_at, "n": n, "attended": attended})


# A live lock the log holds, back into a Redis that lost it (tools/backfill_locks.py): the
# section's last event is a `lock.acquired` by ARGV[5] whose record time + ttl_s is `deadline`.
# Adding only (ARGV[6] ''), or once the marker names this process (ARGV[6], its run_id: grants
# run again): never over a key (a lock granted since the loss wins; a rerun finds its own) nor
# over an index entry (a lock that lapsed since, still to announce); -1: lapsed by now (Redis'
# clock); 0: held; 1: restored.
# Reconciling (ARGV[6] the run_id read before the restore, the marker not naming it: grants wait,
# so every key is the old snapshot's or a restored one): the log decides. Live: key and entry set
# to this value, over another holder's (2) or the same holder's older one (0). Lapsed: no key, and
# this value as the entry (over any, his own too: the take-back, UNRESTORE, compares with it, so an
# expiry landing after the read is not logged again), so that the sweep logs his expiry, which the
# log lacks, once (no gateway could: the snapshot lacked the entry, or its index lapsed while the
# sweep waited for the restore); -2 if another holder's key or entry went, else -1.
# Either way, a key of the logged holder that ends later than the log's deadline (renewed after
# the log was read, or a renewal whose record never landed) is kept, with its entry (0).
# KEYS: lock, index, due, restored marker; ARGV: section, value, deadline ms, index slack ms,
# holder id, run_id or ''.
RESTORE_LOGGED = (
    KEEP_INDEX
    + """
local left = tonumber(ARGV[3]) - now_ms()
if ARGV[6] == '' or redis.call('GET', KEYS[4]) == ARGV[6] then
  if left <= 0 then return -1 end
  if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', left) then return 0 end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  keep(left + tonumber(ARGV[4]))
  return 1
end
local function other(value)
  if not value then return false end
  local ok, held = pcall(cjson.decode, value)
  return not (ok and type(held) == 'table' and held.id == ARGV[5])
end
local key, entry = redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])
if key and not other(key) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 and ttl > left then
    if entry ~= key then redis.call('HSET', KEYS[2], ARGV[1], key) end
    keep(ttl + tonumber(ARGV[4]))
    return 0
  end
end
local corrected = other(key) or other(entry)
if left <= 0 then
  if key then redis.call('DEL', KEYS[1]) end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  keep(tonumber(ARGV[4]))
  return corrected and -2 or -1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', left)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
keep(left + tonumber(ARGV[4]))
if corrected then return 2 end
return key and 0 or 1
"""
)
# Reconciling (as above): the sections whose last event is `lock.released` or `lock.expired`
# lose any key and index entry an old snapshot brought back (held against the log, or an expiry
# the sweep would log again). Nothing once the marker names this process (grants run again).
# KEYS: index, restored marker; ARGV: lock key prefix (`lock:<letterId>:`), run_id, sections.
# How many sections had a key or an entry.
RESTORE_FREED = """
if redis.call('GET', KEYS[2]) == ARGV[2] then return 0 end
local n = 0
for i = 3, #ARGV do
  if redis.call('DEL', ARGV[1] .. ARGV[i]) + redis.call('HDEL', KEYS[1], ARGV[i]) > 0 then
    n = n + 1
  end
end
return n
"""
# Taking back a RESTORE_LOGGED lock that the log moved past meanwhile (another holder took and
# released the section between the rebuild's read and its restore): the key and the entry go
# if they are still the restored value (a renewal or release by its holder changed them: kept).
# Nothing is logged: the log never held the restore. KEYS: lock, index; ARGV: value, section.
UNRESTORE = """
local mine = redis.call('GET', KEYS[1]) == ARGV[1]
if mine then redis.call('DEL', KEYS[1]) end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return mine and 1 or 0
"""
