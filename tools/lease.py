"""A lease in Redis: one holder at a time of a job, across processes (SET NX with a TTL).

The holder renews it every third of its TTL while it works and deletes it at the end, each only
while the key still holds its own token: one that stalled past the TTL has lost it to the next,
one that died leaves it to lapse, and a wipe takes it (a holder that writes its result
only while the key holds its token writes none then).
"""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@asynccontextmanager
async def lease(
    redis: Any, key: str, ttl_s: float, *, wait_s: float | None = None, token: str | None = None
) -> AsyncIterator[str | None]:
    """The lease's token while it is ours, or None when another holds it (with `wait_s`: tried
    again every `wait_s` until it is free instead). `token`: the value it holds (default: a
    random one), unique to the holder."""
    token, ttl_ms = token or secrets.token_hex(16), int(ttl_s * 1000)
    while not await redis.set(key, token, nx=True, px=ttl_ms):
        if wait_s is None:
            yield None
            return
        await asyncio.sleep(wait_s)
    renewing = asyncio.create_task(_renew(redis, key, token, ttl_ms), name=f"lease {key}")
    try:
        yield token
    finally:
        renewing.cancel()
        try:
            # Not `await renewing` under suppress(CancelledError): that would swallow our own
            # task's cancel landing here too, and the holder would go on as if never cancelled.
            await asyncio.wait({renewing})
        finally:
            with suppress(RedisError):  # else it lapses with its TTL
                await redis.eval(RELEASE, 1, key, token)


async def _renew(redis: Any, key: str, token: str, ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            if not await redis.eval(RENEW, 1, key, token, ttl_ms):
                logger.warning("lease %s lost (lapsed or wiped): another run may hold it now", key)
                return
        except RedisError as exc:  # the next renewal may reach it; the TTL covers two misses
            logger.warning("lease %s not renewed: %r", key, exc)
