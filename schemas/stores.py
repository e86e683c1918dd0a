"""Reaching a store at start-up, or saying which one cannot be reached (without its password):
what every command that starts with Redis or PostgreSQL prints in one line."""

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError

from schemas.settings import address_of

# A store that takes the connection and never answers: Redis clients connect on first use, so
# a ping at start bounds their wait; PostgreSQL's pool connects itself (asyncpg's own default,
# 60 s, is long for a start-up that says what it cannot reach).
CONNECT_TIMEOUT_S = 10.0


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


def raise_if_cancelled() -> None:
    """Re-raise a cancellation redis-py swallowed: its asyncio client (8.1) loses a task's
    cancel that lands during a command (about one in four in a tight loop: the command returns
    normally or fails with ConnectionError), and a cancelled service would run on for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
