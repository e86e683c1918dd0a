"""Reaching a store at start-up, or saying which one cannot be reached (without its password):
what every command that starts with Redis or PostgreSQL prints in one line."""

import asyncio
import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError

from schemas.settings import address_of

# A store that takes the connection and never answers: Redis clients connect on first use, so
# a ping at start bounds their wait; PostgreSQL's pool connects itself (asyncpg's own default,
# 60 s, is long for a start-up that says what it cannot reach).
CONNECT_TIMEOUT_S = 10.0
# A restarted Redis answers LOADING to every command until its dataset is in memory (0.3 s for a
# 64 MB AOF; minutes for gigabytes): not down, just not yet available, so a start waits for it.
LOADING_TIMEOUT_S = 300.0
LOADING_POLL_S = 0.1

logger = logging.getLogger(__name__)


class UnreachableError(Exception):
    """Something a command starts with (the log, Redis, PostgreSQL) cannot be reached."""


def unreachable(store: str, url: str | None, exc: BaseException) -> UnreachableError:
    reason = str(exc) or exc.__class__.__name__  # a timeout says nothing of itself
    return UnreachableError(f"{store} at {address_of(url)}: {reason}")


async def answering_redis(url: str) -> Redis:
    """A client of `url`, shown to answer a PING within CONNECT_TIMEOUT_S."""
    try:
        redis = Redis.from_url(url)
    except ValueError as exc:  # a malformed URL
        raise unreachable("Redis", url, exc) from None
    try:
        await until_loaded(url)
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await redis.ping()
        raise_if_cancelled()
    except (RedisError, OSError, TimeoutError) as exc:
        await redis.aclose()
        raise_if_cancelled()
        raise unreachable("Redis", url, exc) from None
    except asyncio.CancelledError:
        await redis.aclose()
        raise
    return redis


async def until_loaded(url: str) -> None:
    """Return once Redis at `url` answers a PING, each within CONNECT_TIMEOUT_S, waiting (logged
    once) up to LOADING_TIMEOUT_S while it loads its dataset; RedisError, OSError or TimeoutError
    otherwise. Its own client, without redis-py's retries: they take LOADING for a broken
    connection and give up after a few seconds (the projector then stopped)."""
    probe = Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    deadline = None
    try:
        while True:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await probe.ping()
                return
            except BusyLoadingError:
                raise_if_cancelled()
                now = asyncio.get_running_loop().time()
                if deadline is None:
                    deadline = now + LOADING_TIMEOUT_S
                    logger.warning(
                        "Redis at %s is loading its dataset: waiting for it (up to %g s)",
                        address_of(url), LOADING_TIMEOUT_S,
                    )  # fmt: skip
                elif now >= deadline:
                    raise BusyLoadingError(
                        f"still loading its dataset after {LOADING_TIMEOUT_S:g} s"
                    ) from None
            await asyncio.sleep(LOADING_POLL_S)
    finally:
        await probe.aclose()


def raise_if_cancelled() -> None:
    """Re-raise a cancellation redis-py swallowed: its asyncio client (8.1) loses a task's
    cancel that lands during a command (about one in four in a tight loop: the command returns
    normally or fails with ConnectionError), and a cancelled service would run on for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
