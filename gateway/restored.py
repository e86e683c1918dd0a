"""Whether this Redis holds the section locks and `Idempotency-Key` claims the log says it
should (`schemas.keys.RESTORED`): the gate of lock grants and keyed creates after a wipe.

Redis loses them with its data (FLUSHALL, a new empty Redis) and nothing folds them back: a
restore from the log does, and sets the marker once it has (each gateway process runs one when
it finds the marker missing, steno_collab/lock_restore.py; `steno-collab backfill locks` is the
same by hand). Until
then a grant could hand out a section the log says someone holds, and a retried keyed create
could make a second letter, so both answer 503 (the grant checks the marker inside its own
script: gateway/collab/lock_scripts.py ACQUIRE). A Redis whose log holds no record has nothing
to restore (a fresh deployment): every create first sets the marker if the log is still empty
(`keep`, gateway/api/rest.py), so a deployment's first letter never leaves it missing, and every
lock and claim made later is made in this Redis.

Its value is the `run_id` of the Redis process that set it (`run_id`): a Redis restarted from a
snapshot (an RDB backup, a replica promoted) brings the marker back with data older than the
log, so a marker naming another process is stale. The gates compare it with the running
process's `run_id` inside their scripts (`MARKED`: ACQUIRE, LAPSE, the create's CLAIM), so a
stale one counts as missing at once; renewals and releases of one's own lock, too frequent for
INFO, compare it with the process last found current (`SAME`, `Seen`). `gated` (or `keep`)
calls the `wake` it is given: the gateway's `Context.wake_restore`, which the app shell sets to
its watcher's, so the restore runs now rather than at the watcher's next check (with
STENO_LOCKS_AUTO_RESTORE=false, to a warning in the log that `steno-collab backfill locks` is
needed).
"""

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from eventlog.errors import LogError
from eventlog.records import Log
from schemas.keys import RESTORED

logger = logging.getLogger(__name__)
# Retry-After of the 503s: a refusal wakes its gateway's watcher (`gated`), which checks within a
# second (steno_collab/lock_restore.py WAKE_GAP_S) and restores in one read of the log (~1 s per
# 200,000 records), so a retry this much later mostly finds it done.
RETRY_S = 5
# The header that says what these 503s mean, for clients (the web page) that act on it: their
# detail is text for operators, free to change. Only these 503s carry it.
UNAVAILABLE_HEADER = "Steno-Unavailable"
RESTORING = "restoring"
UNRESTORED = (
    "Redis may have lost its section locks and create claims (wiped, replaced or restarted):"
    " 503 until they are restored from the log (the gateways do it by themselves unless"
    " STENO_LOCKS_AUTO_RESTORE=false: then `steno-collab backfill locks`)"
)


def refusal_headers() -> dict[str, str]:
    """The headers of an `UNRESTORED` 503: when to come back, and what it means."""
    return {"Retry-After": str(RETRY_S), UNAVAILABLE_HEADER: RESTORING}


# Lua defining `running_id()`: the running Redis process's run_id, from INFO (a ~1 KB reply:
# fine per grant of a free section, keyed create or release of a lock Redis lacks; never put it
# in a per-update or renewal script).
_RUNNING_ID = """
local function running_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
end
"""
# Lua defining `marked(key)`: whether the marker at `key` names the running Redis process. A
# missing one and one of another process (restarted from an older snapshot) are alike. INFO is
# read only when the marker is there.
MARKED = (
    _RUNNING_ID
    + """
local function marked(key)
  local found = redis.call('GET', key)
  if not found then return false end
  return found == running_id()
end
"""
)
# KEYS: marker. 1 if it names this process, else 0.
_PRESENT = MARKED + "return marked(KEYS[1]) and 1 or 0"
# Lua defining `same(key, run_id, saved)`, for the scripts of renewals and releases of one's own
# lock (no INFO: they are the hot path): whether the marker at `key` names the process a caller
# last found it naming (`Seen`), and that process has not saved or restarted since (`LASTSAVE`:
# a restarted Redis sets it to its start, so a snapshot whose marker names the process it left
# does not pass for it). A mismatch is not a refusal: the caller looks again (`seen`, one INFO).
SAME = """
local function same(key, run_id, saved)
  return redis.call('GET', key) == run_id and redis.call('LASTSAVE') == tonumber(saved)
end
"""
# KEYS: marker. {1 if it names this process else 0, its run_id, LASTSAVE}, read together.
_SEEN = (
    _RUNNING_ID
    + """
local id = running_id()
return {redis.call('GET', KEYS[1]) == id and 1 or 0, id, redis.call('LASTSAVE')}
"""
)
# KEYS: marker. Set to this process's run_id, over a stale one (in one script: a restart
# between reading the run_id and the SET would write a stale marker).
_MARK = (
    _RUNNING_ID
    + """
local id = running_id()
redis.call('SET', KEYS[1], id)
return id
"""
)


class Unrestored(Exception):
    """A gate's script found the marker missing or stale and the log has records: the caller
    answers 503 (`UNRESTORED`, `RETRY_S`) until a restore sets it."""


async def present(redis: Any) -> bool:
    """Whether the marker is there and names this Redis process."""
    return bool(await redis.eval(_PRESENT, 1, RESTORED))


@dataclass(frozen=True, slots=True)
class Seen:
    """The Redis process whose run_id a caller last found the marker naming, and its LASTSAVE
    then: what `SAME` compares (the default matches no marker: the first use looks, `seen`)."""

    run_id: str = ""
    saved: int = 0

    def args(self) -> tuple[str, int]:
        return self.run_id, self.saved


async def seen(redis: Any) -> Seen | None:
    """The running process, if the marker names it; else None (missing or stale)."""
    current, ident, saved = await redis.eval(_SEEN, 1, RESTORED)
    if not current:
        return None
    return Seen(ident.decode() if isinstance(ident, bytes) else str(ident), int(saved))


async def run_id(redis: Any) -> str:
    """The Redis process's id (`INFO server`): new at each start, so at a restart from a
    snapshot. Kept by `DEBUG RELOAD`, which reloads what it just saved (its NOSAVE form, loading
    an older file, goes unseen)."""
    return str((await redis.info("server"))["run_id"])


# The topics each log was found holding records of, per process: a log's end never goes back
# to empty, so while the marker is missing on a busy log (every sweep round, every refused gate,
# until the restore) `settle` asks the log once, not each time. A log replaced by an empty one
# under a running gateway (a new cluster) is still taken as busy: restored, not marked.
_BUSY: "weakref.WeakKeyDictionary[Log, set[str]]" = weakref.WeakKeyDictionary()


async def _has_records(log: Log, topic: str) -> bool:
    busy = _BUSY.setdefault(log, set())
    if topic not in busy and any((await log.end_offsets(topic)).values()):
        busy.add(topic)
    return topic in busy


async def settle(redis: Any, log: Log, topic: str) -> bool:
    """For a gate that found the marker missing or stale: whether it is current now. Set here
    (over a stale one) when the log holds no record of `topic` (nothing to restore: every lock
    and claim the log will hold is made in this Redis); else only a restore sets it. The log's
    errors are the caller's (503)."""
    if await _has_records(log, topic):
        return await present(redis)  # a restore may have finished meanwhile
    await redis.eval(_MARK, 1, RESTORED)
    return True


async def gated(
    redis: Any,
    log: Log,
    topic: str,
    script: str,
    keys: Sequence[str],
    *args: Any,
    wake: Callable[[], None],
) -> Any:
    """The answer of a gate's `script` (the marker among `keys`): one that answers 0 when the
    marker is missing or stale runs again once `settle` set it (an empty log). Still missing:
    `wake` called (the gateway's watcher: `Context.wake_restore`) and Unrestored raised. The
    log's errors are the caller's (503)."""
    answer = await redis.eval(script, len(keys), *keys, *args)
    if not _unmarked(answer):
        return answer
    if await settle(redis, log, topic):
        answer = await redis.eval(script, len(keys), *keys, *args)
        if not _unmarked(answer):
            return answer
    wake()
    raise Unrestored


def _unmarked(answer: Any) -> bool:
    # The gates' 0; their other answers are nil (None) or bulk strings (bytes).
    return isinstance(answer, int) and answer == 0


async def keep(redis: Any, log: Log, topic: str, wake: Callable[[], None]) -> None:
    """Before a create's append (one without a claim, which needs no Redis): the marker set if
    the log holds no record yet, as the first letter of a fresh deployment would otherwise
    leave it missing for good; `wake` called if it stays missing or stale (as `gated`). Redis
    or the log failing leaves it to a later create."""
    try:
        if not await present(redis) and not await settle(redis, log, topic):
            wake()
    except (RedisError, LogError) as exc:
        logger.warning("restored marker not checked: %r", exc)
