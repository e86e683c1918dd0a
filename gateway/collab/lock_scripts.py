"""The Redis scripts of section locks (gateway/collab/locks.py): each change to a lock key and
the letter's index `locks:<letterId>` happens in one script, so every instance sees them change
together."""

INDEX_SLACK_S = 120  # the index outlives its newest lock this long: time to announce expiries

# `locks:<letterId>` hash, section -> the lock's value: the letter's index, written with the
# lock key in one script. A release deletes the entry and a timeout leaves it behind, so an
# entry whose key is gone is a lock that expired; whoever deletes it (LAPSE, LIST or ACQUIRE)
# logs `lock.expired`, exactly once across instances. The index's TTL bounds what is never
# claimed (its instances died).
KEEP_INDEX = """
local function keep(ms)
  if redis.call('PTTL', KEYS[2]) < tonumber(ms) then redis.call('PEXPIRE', KEYS[2], ms) end
end
"""
# KEYS: lock, index; ARGV: section, value, ttl_s, index ms. nil if held, else the lapsed entry
# it replaced ('' if none).
ACQUIRE = (
    KEEP_INDEX
    + """
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then return false end
local lapsed = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
keep(ARGV[4])
return lapsed or ''
"""
)
# Compare-and-set / compare-and-delete on the exact value we read: no lost updates. Both return
# 0 if the value changed, else the ms the old value had left (for RESTORE).
# KEYS: lock, index; ARGV: current, value, ttl_s, section, index ms.
RENEW = (
    KEEP_INDEX
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
keep(ARGV[5])
return math.max(left, 1)
"""
)
# KEYS: lock, index; ARGV: current, section.
RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local left = redis.call('PTTL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return math.max(left, 1)
"""
# Undoing what a request did in Redis when logging it failed (the caller answers 503), so that
# Redis and the log agree: no lock without its `lock.acquired`, no `lock.expired` lost.
# UNACQUIRE: our new lock goes, and the lapsed entry ACQUIRE claimed (if any, and not yet
# announced) goes back into the index for a later sweep, acquisition or listing to announce.
# KEYS: lock, index; ARGV: value, section, lapsed entry or '', index ms.
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
# unless the lock changed since. KEYS: lock, index; ARGV: what the request left ('' after a
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
# still free and unlisted. KEYS: lock, index; ARGV: section, entry, index ms.
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
# KEYS: lock, index; ARGV: section. The entry of a lock that timed out, claimed; else nil.
LAPSE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local lapsed = redis.call('HGET', KEYS[2], ARGV[1])
if lapsed then redis.call('HDEL', KEYS[2], ARGV[1]) end
return lapsed
"""
# KEYS: index, then the sections' lock keys; ARGV: the sections.
# {{section, value, ...} held, {section, value, ...} lapsed (claimed)}.
LIST = """
local held, lapsed = {}, {}
for i, section in ipairs(ARGV) do
  local value = redis.call('GET', KEYS[i + 1])
  if value then
    table.insert(held, section); table.insert(held, value)
  else
    local entry = redis.call('HGET', KEYS[1], section)
    if entry then
      redis.call('HDEL', KEYS[1], section)
      table.insert(lapsed, section); table.insert(lapsed, entry)
    end
  end
end
return {held, lapsed}
"""
