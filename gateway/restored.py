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
log, so a marker naming another process is stale and the watcher restores again
(steno_collab/lock_restore.py). The gates only ask whether it is there (one EXISTS, or inside
their scripts): a stale one lets them through until the watcher's next check.
"""

import logging
from typing import Any

from redis.exceptions import RedisError

from eventlog.errors import LogError
from eventlog.records import Log
from schemas.keys import RESTORED

logger = logging.getLogger(__name__)
RETRY_S = 15  # the gateways' own restore: a check every 10 s, then one read of the log
UNRESTORED = (
    "Redis may have lost its section locks and create claims (wiped, replaced or restarted):"
    " 503 until they are restored from the log (the gateways do it by themselves unless"
    " STENO_LOCKS_AUTO_RESTORE=false: then `steno-collab backfill locks`)"
)


async def present(redis: Any) -> bool:
    return bool(await redis.exists(RESTORED))


async def run_id(redis: Any) -> str:
    """The Redis process's id (`INFO server`): new at each start, so at a restart from a
    snapshot. Kept by `DEBUG RELOAD`, which reloads what it just saved (its NOSAVE form, loading
    an older file, goes unseen)."""
    return str((await redis.info("server"))["run_id"])


async def settle(redis: Any, log: Log, topic: str) -> bool:
    """For a gate that found the marker missing: whether it is there now. Set here when the log
    holds no record of `topic` (nothing to restore: every lock and claim the log will hold is
    made in this Redis); else only a restore sets it. The log's errors are the caller's (503)."""
    if any((await log.end_offsets(topic)).values()):
        return await present(redis)  # a restore may have finished meanwhile
    await redis.set(RESTORED, await run_id(redis), nx=True)
    return True


async def keep(redis: Any, log: Log, topic: str) -> None:
    """Before a create's append (one without a claim, which needs no Redis): the marker set if
    the log holds no record yet, as the first letter of a fresh deployment would otherwise
    leave it missing for good. Redis or the log failing leaves it to a later create."""
    try:
        if not await present(redis):
            await settle(redis, log, topic)
    except (RedisError, LogError) as exc:
        logger.warning("restored marker not checked: %r", exc)
