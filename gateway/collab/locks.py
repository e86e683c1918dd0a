"""Advisory section locks: `lock:<letterId>:<section>` in Redis (SET NX EX) plus events in the log.

The Redis key is the gateway's coordination key (exclusive among all instances); the log gets
`lock.acquired` (also on renewal), `lock.released` and `lock.expired` so the audit and every
collaborator see them. Locks are advisory: document edits are never refused because of them.

Expiry: Redis drops the key after the TTL without telling anyone, so the instance that granted
(or last renewed) a lock remembers it and a sweep every few seconds appends `lock.expired` for
those whose key is gone; an acquisition that finds an expired lock of ours emits it first.
If that instance dies, its locks still expire in Redis, only without the event.

A holder who leaves: a lock taken while its holder was on the letter (in the projector's
`presence:<letterId>`, on any instance) is released early, with `lock.expired`, once the
holder has been gone from it for `lock_release_after_leave_s` (30 s; a tab that crashed or lost
its network does not hold a section for the rest of the TTL, one that reconnects within it
keeps its lock). Locks of holders that never were on the letter (a backend's) keep their TTL.
"""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from gateway.access import LetterMeta
from gateway.api.responses import AUTHENTICATED, errors
from gateway.api.rest import ClaimsDep
from gateway.auth import Claims
from gateway.collab.shared import Collab, CollabError, iso, user_ref
from schemas.events import LockAcquired, LockExpired, LockReleased, UserRef
from schemas.ids import uuid7

log = logging.getLogger(__name__)
LOCK_TTL_S = 300
SWEEP_EVERY_S = 5.0
LOCKERS = frozenset({"editor", "service"})  # sections are locked to edit them
MAX_SECTION = 200

# Compare-and-set / compare-and-delete on the exact value we read: no lost updates.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) and 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

router = APIRouter()


@dataclass
class Granted:
    letter_id: str
    section: str
    firm_id: str
    value: str  # the exact Redis value we wrote
    holder: UserRef
    expires_at: float
    attended: bool = False  # the holder was on the letter when it was granted or renewed
    absent_since: float | None = None  # monotonic: when a sweep first found the holder gone


def key_of(letter_id: str, section: str) -> str:
    return f"lock:{letter_id}:{section}"


class Locks:
    def __init__(self, collab: Collab, ttl_s: int = LOCK_TTL_S) -> None:
        self.collab, self.ttl_s = collab, ttl_s
        self.release_after_leave_s = collab.ctx.settings.lock_release_after_leave_s
        self._granted: dict[str, Granted] = {}  # redis key -> what this instance granted
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def redis(self) -> Any:
        redis = self.collab.ctx.redis
        if redis is None:
            raise CollabError(503, "locks need Redis")
        return redis

    def start(self) -> None:
        if self.collab.ctx.redis is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def acquire(self, claims: Claims, letter_id: str, section: str) -> dict[str, Any]:
        meta = await self.collab.letter(claims, letter_id)
        _check(claims, section)
        key = key_of(letter_id, section)
        await self._expire_if_gone(key)
        attended = await self._present(letter_id, claims.sub)  # before anything is taken
        holder = user_ref(claims)
        expires_at = time.time() + self.ttl_s
        value = json.dumps({**holder.model_dump(), "expires_at": expires_at, "n": uuid7()})
        for _ in range(3):  # NX fails -> read -> the key may expire in between: retry
            if await self.redis.set(key, value, nx=True, ex=self.ttl_s):
                break
            current = await self.redis.get(key)
            if current is None:
                continue
            held = json.loads(current)
            if held["id"] != claims.sub:
                raise CollabError(409, "locked", _locked_body(held))
            if await self.redis.eval(_RENEW, 1, key, current, value, self.ttl_s):
                break
        else:
            raise CollabError(409, "lock contended, retry")
        self._granted[key] = Granted(
            letter_id, section, meta.firm_id, value, holder, expires_at, attended
        )
        await self.collab.append(
            claims, meta, LockAcquired(section=section, holder=holder, ttl_s=self.ttl_s)
        )
        return {"section": section, "holder": holder.model_dump(), "expires_at": iso(expires_at)}

    async def release(self, claims: Claims, letter_id: str, section: str) -> dict[str, Any]:
        meta = await self.collab.letter(claims, letter_id)
        _check(claims, section)
        key = key_of(letter_id, section)
        current = await self.redis.get(key)
        if current is None:
            await self._expire_if_gone(key)
            raise CollabError(404, "not locked")
        held = json.loads(current)
        if held["id"] != claims.sub:
            raise CollabError(403, "only the holder may release a lock", _locked_body(held))
        if not await self.redis.eval(_RELEASE, 1, key, current):
            raise CollabError(409, "lock changed, retry")
        self._granted.pop(key, None)
        await self.collab.append(
            claims, meta, LockReleased(section=section, holder=user_ref(claims))
        )
        return {"section": section, "released": True}

    async def held(self, claims: Claims, letter_id: str) -> dict[str, Any]:
        await self.collab.letter(claims, letter_id)
        locks = []
        async for raw in self.redis.scan_iter(match=f"lock:{letter_id}:*", count=200):
            value = await self.redis.get(raw)
            if value is not None:
                held = json.loads(value)
                section = raw.decode().split(":", 2)[2]
                locks.append({"section": section, **_locked_body(held)})
        return {"locks": sorted(locks, key=lambda lock: lock["section"])}

    async def _expire_if_gone(self, key: str) -> None:
        granted = self._granted.get(key)
        if granted is None or time.time() < granted.expires_at - 1:
            return
        current = await self.redis.get(key)
        if current is not None and current.decode() == granted.value:
            return  # still ours (Redis' clock says it has not expired)
        del self._granted[key]
        if current is None:
            await self._append_expired(granted)

    async def _append_expired(self, granted: Granted) -> None:
        # Attributed to the holder whose lock lapsed; nobody acted.
        service = Claims(granted.holder.id, granted.firm_id, granted.holder.name, "service", 0.0)
        meta = LetterMeta(granted.letter_id, granted.firm_id, "")
        payload = LockExpired(section=granted.section, holder=granted.holder)
        await self.collab.append(service, meta, payload)

    async def _present(self, letter_id: str, user: str) -> bool:
        return bool(await self.redis.hexists(f"presence:{letter_id}", user))

    async def _release_if_left(self, key: str) -> None:
        granted = self._granted.get(key)
        if granted is None or not granted.attended:
            return
        if await self._present(granted.letter_id, granted.holder.id):
            granted.absent_since = None
            return
        now = time.monotonic()
        if granted.absent_since is None:
            granted.absent_since = now
        if now - granted.absent_since < self.release_after_leave_s:
            return
        if self._granted.get(key) is not granted:
            return  # renewed, released or expired meanwhile
        del self._granted[key]
        if await self.redis.eval(_RELEASE, 1, key, granted.value):  # still exactly ours
            await self._append_expired(granted)

    async def sweep(self) -> None:
        for key in list(self._granted):
            try:
                await self._expire_if_gone(key)
                await self._release_if_left(key)
            except CollabError as exc:
                log.warning("lock sweep of %s: %s", key, exc)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.sweep()
            except Exception as exc:  # Redis down: try again next round
                log.warning("lock sweep failed: %r", exc)


def _check(claims: Claims, section: str) -> None:
    if claims.role not in LOCKERS:
        raise CollabError(403, f"role {claims.role} cannot lock sections")
    if not section or len(section) > MAX_SECTION:
        raise CollabError(422, f"section must be 1..{MAX_SECTION} characters")


def _locked_body(held: dict[str, Any]) -> dict[str, Any]:
    return {
        "locked_by": {"id": held["id"], "name": held.get("name", "")},
        "expires_at": iso(float(held["expires_at"])),
    }


def locks_of(request: Request) -> Locks:
    locks: Locks = request.app.state.locks
    return locks


LocksDep = Annotated[Locks, Depends(locks_of)]


PATH = "/v1/letters/{letter_id}/locks"


@router.post(PATH + "/{section}", responses=errors(*AUTHENTICATED, 409, 503))
async def post_lock(
    letter_id: str, section: str, locks: LocksDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await locks.acquire(claims, letter_id, section)


@router.delete(PATH + "/{section}", responses=errors(*AUTHENTICATED, 404, 409, 503))
async def delete_lock(
    letter_id: str, section: str, locks: LocksDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await locks.release(claims, letter_id, section)


@router.get(PATH, responses=errors(*AUTHENTICATED, 503))
async def get_locks(letter_id: str, locks: LocksDep, claims: ClaimsDep) -> dict[str, Any]:
    return await locks.held(claims, letter_id)
