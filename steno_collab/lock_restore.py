"""The gateway's own restore of the section locks and create claims after Redis lost them.

Until `schemas.keys.RESTORED` is back, lock grants, renewals and releases and keyed creates answer
503 (gateway/restored.py). Rather than wait for an operator's `steno-collab backfill locks`, each
gateway process checks the marker (its value and Redis' `run_id`) at start and every `CHECK_S`;
missing while the log holds letters, it runs the same restore (tools/backfill_locks.py
`restore_all`: under a lease, so one gateway restores at a time and the others find the marker set
by the next check). A marker naming another Redis process is stale: a Redis restarted from a
snapshot (a backup, a replica promoted) has it back with locks and claims older than the log's, so
it is deleted (if it still holds that value) and the restore runs as for a missing one,
reconciling Redis with the log (what the log says is held set, what it says is free removed).
A failure (Redis or the log down, a wipe during the run) is logged once per outage; a failed
check is tried again after `CHECK_S` (Redis back, empty, is restored at once), a failed restore
with backoff (the expensive part). A gate that finds the marker missing or stale
calls `Watcher.wake` (the gateway's `Context.wake_restore`, set by the wiring:
steno_collab/services.py): the watcher checks then, within WAKE_GAP_S, instead of at its next
interval. Nothing here stops the gateway.
With STENO_LOCKS_AUTO_RESTORE=false no watcher runs and `Reminder.wake` is the gates' wake
instead: any Redis restart (a new run_id) then leaves grants, renewals, releases and keyed
creates at 503 until an operator's `backfill locks` (the locks held lapse meanwhile, unrenewed),
so it says so in the gateway's log (at most once a minute) and in a counter. Both counters are
the gateway's (gateway/metrics.py: at 0 from start, with or without Redis), handed in here.
It lives in the app shell since the gateway may not import tools: `watch` joins it to the app's
lifespan.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter
from redis.exceptions import RedisError

from eventlog.errors import LogError
from eventlog.records import Log
from gateway import restored
from gateway.collab.locks import LOCK_TTL_S
from schemas.keys import RESTORED
from schemas.settings import Settings
from schemas.stores import raise_if_cancelled
from tools.backfill_locks import restore_all
from tools.sources import Sources

logger = logging.getLogger(__name__)

CHECK_S = 10.0  # a lost marker is noticed this long after the wipe at most
WAKE_GAP_S = 1.0  # a gate's wake checks at once, but not sooner than this after a check
STOP_S = 5.0  # the most a shutdown waits for a cancelled restore
BACKOFF_MAX_S = 300.0  # failed restores retried after CHECK_S, doubling up to this
WARN_GAP_S = 60.0  # auto-restore off: a flood of 503s logs one warning a minute
# Delete the marker only if it still names the process found stale (another gateway may have
# restored and set it again meanwhile).
UNMARK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """The restore ran, but Redis lost its lease meanwhile (wiped again): no marker set."""


class Watcher:
    """Checks the marker every `check_s`, restores when it is missing or stale (module doc)."""

    def __init__(
        self,
        settings: Settings,
        log: Log,
        redis: Any,
        check_s: float = CHECK_S,
        counter: Counter | None = None,
    ) -> None:
        """`counter`: the gateway's `gateway_locks_auto_restores` (gateway/metrics.py)."""
        self.src = Sources(settings, log, redis)
        self.check_s = check_s
        self.woken = asyncio.Event()  # a gate found the marker missing since the last check
        self.checks = 0  # done (failed ones too): a test's clock
        self.restores = 0  # finished, the marker set
        self.failures = 0  # failed rounds in a row (checks or restores): one log line
        self.failed_restores = 0  # in a row: the backoff
        self.restoring = False  # this round reached the restore
        self.running = False
        self.counter = counter

    async def run(self) -> None:
        """Until cancelled; woken by its gateway's gates meanwhile (`wake`)."""
        self.running = True
        try:
            await self._run()
        finally:
            self.running = False

    def wake(self) -> None:
        """A gate found the marker missing or stale (gateway/restored.py `gated`): check now,
        not at the next interval, so that a Redis restarted intact answers 503 about as long
        as the restore takes. Not during a failed restore's backoff (`pause`)."""
        self.woken.set()

    async def _run(self) -> None:
        while True:
            self.restoring = False
            self.woken.clear()  # wakes until now are answered by this check, later ones by the next
            try:
                await self.check()
                self.failures = self.failed_restores = 0
            except (RedisError, LogError, OSError, LeaseLost) as exc:
                raise_if_cancelled()  # a cancel a client turned into its own error
                self.failed(exc)
            except Exception as exc:  # a bug must not end the watch (grants would stay 503)
                raise_if_cancelled()  # a cancel a client turned into its own error
                logger.exception("locks restore failed")
                self.failed(exc, logged=True)
            self.checks += 1
            # redis-py's asyncio client can swallow a cancel landing during a command (it then
            # returns normally: schemas/stores.py): asked here, the watch ends at shutdown.
            raise_if_cancelled()
            await self.pause()

    async def pause(self) -> None:
        """`delay`, cut short by a wake once WAKE_GAP_S passed: a flood of 503s makes one check
        a second at most. A failed restore's backoff is never cut short (the expensive part)."""
        delay = self.delay
        if delay > self.check_s:
            await asyncio.sleep(delay)
            return
        gap = min(WAKE_GAP_S, delay)
        await asyncio.sleep(gap)
        try:
            await asyncio.wait_for(self.woken.wait(), delay - gap)
        except TimeoutError:
            pass

    @property
    def delay(self) -> float:
        """After a failed check, `check_s` all the same: a Redis back (empty) is restored within
        it, not minutes later. After a failed restore, doubling per restore failed in a row."""
        if not self.restoring or not self.failed_restores:
            return self.check_s
        backoff = self.check_s * 2.0 ** (self.failed_restores - 1)
        return min(backoff, max(BACKOFF_MAX_S, self.check_s))

    def failed(self, exc: Exception, *, logged: bool = False) -> None:
        # Once per outage: a Redis down for an hour is one line, not one every check.
        if not self.failures and not logged:
            logger.warning(
                "locks restore failed, tried again (logged once until it works): %r", exc
            )
        self.failures += 1
        if self.restoring:
            self.failed_restores += 1

    async def check(self) -> None:
        redis, log, topic = self.src.redis, self.src.log, self.src.letters_topic
        assert redis is not None  # given at construction
        found, current = await redis.get(RESTORED), await restored.run_id(redis)
        if found is not None:
            if (found if isinstance(found, str) else found.decode(errors="replace")) == current:
                return
            # Stale ("fresh"/"restored" before run ids too): restored again, as if missing.
            await redis.eval(UNMARK, 1, RESTORED, found)
            logger.info("locks restore: %s names another Redis process (stale)", RESTORED)
        if await restored.settle(redis, log, topic):
            return  # an empty log has nothing to restore (the marker set)
        self.restoring = True
        began = time.monotonic()
        counts = await restore_all(self.src, starting=_starting)
        if counts is None:
            logger.debug("locks restore: another process restores them (or has)")
            return
        line = counts.line(time.monotonic() - began)
        if counts.unmarked:
            raise LeaseLost(line)
        self.restores += 1
        if self.counter is not None:
            self.counter.inc()
        logger.info("locks restore done: %s", line)


class Reminder:
    """The gates' wake with STENO_LOCKS_AUTO_RESTORE=false (module docstring): nothing restores
    the locks by itself, so the operator is told, not left to find the 503s."""

    def __init__(self, counter: Counter, clock: Callable[[], float] = time.monotonic) -> None:
        """`counter`: the gateway's `gateway_locks_unrestored_found` (gateway/metrics.py)."""
        self.clock = clock
        self.warned_at: float | None = None
        self.counter = counter

    def wake(self) -> None:
        self.counter.inc()
        now = self.clock()
        if self.warned_at is not None and now - self.warned_at < WARN_GAP_S:
            return
        self.warned_at = now
        logger.warning(
            "%s marker missing or stale (Redis restarted, wiped or rolled back): lock grants,"
            " renewals and releases and keyed creates answer 503 until `steno-collab backfill"
            " locks` (STENO_LOCKS_AUTO_RESTORE=false): run it now, the locks held lapse within"
            " their TTL (%d s) unrenewed",
            RESTORED,
            LOCK_TTL_S,
        )


def _starting() -> None:
    logger.info(
        "locks restore: Redis' %s missing or stale (Redis wiped, restarted or rolled back, or an"
        " upgrade): restoring the section locks and create claims from the log",
        RESTORED,
    )


def watch(app: FastAPI, watcher: Watcher) -> None:
    """Run `watcher` in `app`'s lifespan: started once the gateway has, cancelled and awaited
    before it drains."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            task = asyncio.create_task(watcher.run(), name="locks auto restore")
            try:
                yield state
            finally:
                task.cancel()
                # Bounded: a shutdown goes on even if a cancel were lost (one was, in the lease's
                # exit: tools/lease.py; tests/collab/test_locks_auto_restore.py pins it).
                await asyncio.wait({task}, timeout=STOP_S)
                if not task.done():
                    logger.warning("locks restore did not stop within %.0f s", STOP_S)

    app.router.lifespan_context = lifespan
