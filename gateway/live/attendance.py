"""Who this instance vouches for: the users it has connected to each letter, in Redis, without
the projector.

`attending:<letterId>` is a zset of `["<userId>", "<gatewayId>"]` (JSON) -> the Redis time (ms)
until which that gateway vouches that the user has a connection to the letter through it. Each
instance writes only its own members: when a user's first connection to the letter here opens,
again at each heartbeat (every `every_s`, for `ttl_s`: the `gateway:<id>:alive` key's beat and
TTL), and it drops a member when the user's last connection here closes. A killed instance's
members lapse with its heartbeat; any write drops the lapsed members of the keys it touches.

The section-lock sweep reads it (gateway/collab/lock_scripts.py): a lock's holder vouched for
by a live gateway is on the letter, whatever the projector's presence says, which lags while
the projector is down or behind (a holder whose gateway died and who reconnected through
another one must keep his lock).

One task writes, in order: a join, a leave and a renewal never race each other in Redis, and a
Redis outage costs one pending write per (letter, user), retried, not a task per connection.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from typing import Any

from gateway.redis_lua import NOW
from schemas.keys import attending_key
from schemas.outages import Outage

log = logging.getLogger(__name__)
RETRY_S = 1.0  # after a failed write (Redis down)
CHUNK = 500  # (letter, user) pairs per script call
FLUSH_AT_CLOSE_S = 1.0  # an orderly stop drops its members; a longer wait is not worth it

# KEYS: attending keys, one per ARGV after the first (a key may repeat); ARGV[1]: ttl ms, then
# for each key '+<member>' (vouch until now + ttl) or '-<member>' (drop). Times are Redis'.
WRITE = (
    NOW
    + """
local now = now_ms()
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local op, member = string.sub(ARGV[i + 1], 1, 1), string.sub(ARGV[i + 1], 2)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if op == '+' then
    redis.call('ZADD', key, now + ttl, member)
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  else
    redis.call('ZREM', key, member)
  end
end
return #KEYS
"""
)


def member(user_id: str, gateway_id: str) -> str:
    return json.dumps([user_id, gateway_id])


class Attendance:
    def __init__(self, redis: Any, gateway_id: str, ttl_s: float, every_s: float) -> None:
        self.redis, self.gateway_id = redis, gateway_id
        self.ttl_ms, self.every_s = int(ttl_s * 1000), every_s
        self._counts: Counter[tuple[str, str]] = Counter()  # (letter, user) -> connections here
        self._dirty: set[tuple[str, str]] = set()  # pairs whose Redis member is not as counted
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage()  # one WARNING per Redis outage, not one per retry

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop writing; an orderly stop first drops the members of the connections it closed."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._dirty:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FLUSH_AT_CLOSE_S):
                    await self._write(self._take())

    def joined(self, letter_id: str, user_id: str) -> None:
        pair = (letter_id, user_id)
        self._counts[pair] += 1
        if self._counts[pair] == 1:
            self._changed(pair)

    def left(self, letter_id: str, user_id: str) -> None:
        pair = (letter_id, user_id)
        self._counts[pair] -= 1
        if self._counts[pair] <= 0:
            del self._counts[pair]
            self._changed(pair)

    def _changed(self, pair: tuple[str, str]) -> None:
        if self.redis is None:  # no Redis, no locks: nothing to vouch for
            return
        self._dirty.add(pair)
        self._wake.set()

    def _take(self) -> set[tuple[str, str]]:
        pending, self._dirty = self._dirty, set()
        self._wake.clear()
        return pending

    async def _run(self) -> None:
        renew_at = time.monotonic()
        while True:
            if time.monotonic() >= renew_at:  # the heartbeat: every member written again
                renew_at = time.monotonic() + self.every_s
                self._dirty |= set(self._counts)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(renew_at - time.monotonic(), 0)):
                    await self._wake.wait()
            pending = self._take()
            try:
                await self._write(pending)
            except Exception as exc:  # Redis down: the lock sweep then goes by presence
                self._outage.failed(log, "cannot write attendance: %r", exc)
                self._dirty |= pending
                await asyncio.sleep(RETRY_S)
            else:
                if pending:  # nothing to write asked nothing of Redis: no sign it is back
                    self._outage.recovered(
                        log, "writing attendance works again after %s", unit="failure"
                    )

    async def _write(self, pairs: set[tuple[str, str]]) -> None:
        ordered = sorted(pairs)
        for at in range(0, len(ordered), CHUNK):
            chunk = ordered[at : at + CHUNK]
            keys = [attending_key(letter) for letter, _ in chunk]
            ops = [
                ("+" if pair in self._counts else "-") + member(pair[1], self.gateway_id)
                for pair in chunk
            ]
            await self.redis.eval(WRITE, len(keys), *keys, self.ttl_ms, *ops)
