"""The gateway's own restore of the section locks and create claims after Redis lost them.

Until `schemas.keys.RESTORED` is back, lock grants and keyed creates answer 503
(gateway/restored.py). Rather than wait for an operator's `steno-collab backfill locks`, each
gateway process checks the marker (one EXISTS) at start and every `CHECK_S`; missing while the
log holds letters, it runs the same restore (tools/backfill_locks.py `restore_all`: under a
lease, so one gateway restores at a time and the others find the marker set by the next check).
A failure (Redis or the log down, a wipe during the run) is logged once and tried again with
backoff; nothing here stops the gateway. It lives in the app shell since the gateway may not
import tools: `watch` joins it to the app's lifespan.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from eventlog.errors import LogError
from eventlog.records import Log
from gateway import restored
from schemas.keys import RESTORED
from schemas.settings import Settings
from tools.backfill_locks import restore_all
from tools.sources import Sources

logger = logging.getLogger(__name__)

CHECK_S = 10.0  # a lost marker is noticed this long after the wipe at most
STOP_S = 5.0  # the most a shutdown waits for a cancelled restore
BACKOFF_MAX_S = 300.0  # failed checks or restores retried after CHECK_S, doubling up to this


class LeaseLost(Exception):
    """The restore ran, but Redis lost its lease meanwhile (wiped again): no marker set."""


class Watcher:
    """Checks the marker every `check_s` and restores when it is missing (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        log: Log,
        redis: Any,
        check_s: float = CHECK_S,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.src = Sources(settings, log, redis)
        self.check_s = check_s
        self.checks = 0  # done (failed ones too): a test's clock
        self.restores = 0  # finished, the marker set
        self.failures = 0  # in a row
        self.running = False
        self.counter = (
            None
            if registry is None
            else Counter(
                "gateway_locks_auto_restores",
                "Restores of the section locks this gateway ran by itself (marker missing)",
                registry=registry,
            )
        )

    async def run(self) -> None:
        """Until cancelled."""
        self.running = True
        try:
            await self._run()
        finally:
            self.running = False

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
                self.failures = 0
            except (RedisError, LogError, OSError, LeaseLost) as exc:
                _unless_cancelled(exc)
                self.failed(exc)
            except Exception as exc:  # a bug must not end the watch (grants would stay 503)
                _unless_cancelled(exc)
                logger.exception("locks restore failed")
                self.failures += 1
            self.checks += 1
            await asyncio.sleep(self.delay)

    @property
    def delay(self) -> float:
        if not self.failures:
            return self.check_s
        return min(self.check_s * 2.0 ** (self.failures - 1), max(BACKOFF_MAX_S, self.check_s))

    def failed(self, exc: Exception) -> None:
        # Once per outage: a Redis down for an hour is one line, not one every check.
        if not self.failures:
            logger.warning(
                "locks restore failed, tried again with backoff (logged once until it works): %r",
                exc,
            )
        self.failures += 1

    async def check(self) -> None:
        redis, log, topic = self.src.redis, self.src.log, self.src.letters_topic
        if await restored.present(redis) or await restored.settle(redis, log, topic):
            return  # settle: an empty log has nothing to restore (the marker set)
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


def _starting() -> None:
    logger.info(
        "locks restore: Redis lacks %s (it lost its data): restoring the section locks and"
        " create claims from the log",
        RESTORED,
    )


def _unless_cancelled(exc: Exception) -> None:
    """Stop if `exc` stands for our cancellation: a client that times out its own call turns a
    cancel landing then into its TimeoutError, and the loop would go on for good (the app's
    shutdown, which awaits it, with it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


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
