"""A lease in Redis: one holder at a time of a job, across processes (SET NX with a TTL).

The holder renews it every third of its TTL while it works and deletes it at the end, each only
while the key still holds its own token: one that stalled past the TTL has lost it to the next,
one that died leaves it to lapse, and a wipe takes it (a holder that writes its result
only while the key holds its token writes none then). A holder that must not run on once it
has lost it (`stop=True`) is cancelled when a renewal finds out, and raises `LeaseLost`.
A renewal every third of the TTL finds that out late: a holder that must write nothing once it
lost it (a pause past the TTL, then the write in flight) fences each write on it (`fenced`, or
a script of its own that checks the token as `FENCED` does, atomically with the write).
"""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, NamedTuple

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
# KEYS[1] the lease, ARGV[1] its holder's token, then a command and its arguments (KEYS stay
# the lease's alone: the keys a command writes are its arguments). nil when not held, else
# {1, the command's reply} (a nil reply in a table alone would leave it empty).
FENCED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return nil end
return {1, redis.call(unpack(ARGV, 2))}
"""


class Held(NamedTuple):
    """A lease as its holder holds it: the key and the token it must still hold."""

    key: str
    token: str


class LeaseLost(RuntimeError):
    """The lease lapsed or went to another holder while ours (we stalled or were paused past
    its TTL, or a wipe took it): the body was stopped, or had ended by the time we found out."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"lease {key} lost")


@asynccontextmanager
async def lease(
    redis: Any,
    key: str,
    ttl_s: float,
    *,
    wait_s: float | None = None,
    token: str | None = None,
    busy: Callable[[], Awaitable[bool]] | None = None,
    stop: bool = False,
) -> AsyncIterator[str | None]:
    """The lease's token while it is ours, or None when another holds it (with `wait_s`: tried
    again every `wait_s` until it is free instead). `token`: the value it holds (default: a
    random one), unique to the holder. `busy`: awaited each time another holds it, before
    waiting; True: try again at once (it freed the lease, e.g. its holder was dead). `stop`: a
    renewal that finds the lease lost cancels the body, and `LeaseLost` is raised in its place;
    also when the body ended first and the release finds it lost."""
    token, ttl_ms = token or secrets.token_hex(16), int(ttl_s * 1000)
    while not await redis.set(key, token, nx=True, px=ttl_ms):
        if wait_s is None:
            yield None
            return
        if busy is None or not await busy():
            await asyncio.sleep(wait_s)
    holder = asyncio.current_task() if stop else None
    cancelling = holder.cancelling() if holder is not None else 0
    stopped: list[asyncio.Task[Any]] = []  # the holder, once a renewal cancelled it

    def lost() -> None:
        if holder is None:
            logger.warning("lease %s lost (lapsed or wiped): another run may hold it now", key)
        else:  # LeaseLost says it
            holder.cancel(f"lease {key} lost")
            stopped.append(holder)

    renewing = asyncio.create_task(_renew(redis, key, token, ttl_ms, lost), name=f"lease {key}")
    released: object = True  # unknown (Redis unreachable) is not lost
    try:
        try:
            yield token
        finally:
            renewing.cancel()
            try:
                # Not `await renewing` under suppress(CancelledError): that would swallow our
                # own task's cancel landing here too, and the holder would go on as if never
                # cancelled.
                await asyncio.wait({renewing})
            finally:
                with suppress(RedisError):  # else it lapses with its TTL
                    released = await redis.eval(RELEASE, 1, key, token)
    except (asyncio.CancelledError, Exception):
        # Our cancel, or what it made of the body's work in flight (an error from a call it cut
        # short). Ours alone, as asyncio.timeout does: a Ctrl-C's cancel besides stays a cancel.
        if stopped and stopped[0].uncancel() <= cancelling:
            raise LeaseLost(key) from None
        raise
    if stopped:  # the body ended all the same: the cancel was ours, taken back
        stopped[0].uncancel()
    if stop and (stopped or not released):
        raise LeaseLost(key)


async def fenced(redis: Any, held: Held, *command: str | bytes) -> Any:
    """Run one Redis command only while `held.key` still holds `held.token` (in one script);
    its reply, or `LeaseLost` with nothing done. Its arguments go through Lua's unpack(): keep
    them to thousands."""
    reply = await redis.eval(FENCED, 1, held.key, held.token, *command)
    if reply is None:
        raise LeaseLost(held.key)
    return reply[1] if len(reply) > 1 else None


async def _renew(redis: Any, key: str, token: str, ttl_ms: int, lost: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            if not await redis.eval(RENEW, 1, key, token, ttl_ms):
                lost()
                return
        except RedisError as exc:  # the next renewal may reach it; the TTL covers two misses
            logger.warning("lease %s not renewed: %r", key, exc)
