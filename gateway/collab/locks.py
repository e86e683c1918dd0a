"""Advisory section locks: `lock:<letterId>:<section>` in Redis (SET NX EX) plus events in the log.

The Redis key is the gateway's coordination key (exclusive among all instances); the log gets
`lock.acquired` (also on renewal), `lock.released` and `lock.expired` so the audit and every
collaborator see them. Locks are advisory: document edits are never refused because of them.

The letter's index `locks:<letterId>` (hash section -> the lock's value, written in the same
scripts as the keys) lists its locks without scanning the keyspace, and tells a timeout from a
release: a release deletes the entry, a timeout leaves it behind.

Expiry: Redis drops the key after the TTL without telling anyone. Every script that writes an
index entry also queues the letter in `locks-due` (a zset: when it should next be looked at),
and every instance sweeps every few seconds the letters due, claiming each for a while so that
one instance looks at a time; an acquisition or a listing that meets a lapsed entry announces
it too. Whichever deletes the lapsed entry appends `lock.expired`: once, and never for a lock
released (on any instance). Nothing of it lives in the memory of the instance that granted the
lock: one that restarts or dies leaves its locks to the others' sweeps. If no instance runs
within the index's lifetime (the newest lock's TTL + 120 s), the lock expires silently.

When the log refuses the event, the request answers 503 and a compensating script puts Redis
back as it was (a new lock deleted, a renewed or released one restored, a claimed lapsed entry
returned to the index), so no lock is held unlogged and no `lock.expired` is lost. A grant or
release the log did not confirm in time (504: it may still land) is kept in Redis as made.

A holder who leaves: a lock taken while its holder was on the letter (in the projector's
`presence:<letterId>`, or vouched for by a live gateway in `attending:<letterId>`: gateway/live/
attendance.py; on any instance; the lock's value says `attended`) is released early,
with `lock.expired`, once the holder has been gone from it for `lock_release_after_leave_s`
(30 s; a tab that crashed or lost its network does not hold a section for the rest of the TTL,
one that reconnects within it keeps its lock). When the holder was first found gone is kept in
Redis (`locks:<letterId>:away`), so the instance that releases need not be the one that
noticed. A holder whose gateway died stays present until the projector reaps that gateway's
connections (`stale_after_s` after its `gateway:<id>:alive` heartbeat lapsed: projector/stale.py),
but his absence is counted from the heartbeat's loss: a holder whose every connection to the
letter (the projector's `letter:<letterId>:connections`, `connection:<connId>`) is on a gateway
without its heartbeat is gone (released ~heartbeat TTL + 30 s after a kill -9, not at the reap
+ 30 s); one who reconnected through a live gateway is present. That gateway vouches for him
itself (`attending:<letterId>`, renewed with its heartbeat), so he is present at once, even while
the projector is down or behind and has not recorded his new connection.
Locks of holders that never were on the letter (a backend's) keep their TTL.

A Redis that lost its data lost its locks, which the gateways restore from the log by
themselves (steno_collab/lock_restore.py), or `steno-collab backfill locks`: until its marker is
back and names the running Redis process (gateway/restored.py), taking a free section answers
503 (ACQUIRE reads the marker: no extra round trip), and so does releasing a lock Redis lacks
(LAPSE reads it: the restore could give the lock back, so the release waits for it and is then
logged), and so does a request that finds another user's lock (a 409 or 403 would name an older
snapshot's holder, whom the log may say released), and so does a renewal or release of the
caller's own lock (RENEW and RELEASE compare the marker with the process it named when this
instance last looked, and LASTSAVE: no INFO per renewal; an older snapshot's lock may be one its
holder released since, whose renewal would log him as its holder again), and so does a listing
(LIST compares as RENEW: a wiped index lists no lock, and the web page showed every section
free). The sweep claims no lapsed entry and releases nothing then (an older snapshot's entry may
be of an expiry logged already).
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from eventlog.errors import LogError
from gateway import restored
from gateway.access import LetterMeta
from gateway.api.names import problem
from gateway.api.responses import (
    AUTHENTICATED,
    errors,
)
from gateway.api.rest import ClaimsDep
from gateway.auth import Claims
from gateway.collab import lock_scripts as scripts
from gateway.collab.shared import Collab, CollabError, iso, log_unavailable, user_ref
from schemas.events import LockAcquired, LockExpired, LockReleased, Topic, UserRef
from schemas.ids import uuid7
from schemas.keys import (
    RESTORED,
    alive_key,
    attending_key,
    connection_key,
    connections_key,
    presence_key,
)
from schemas.outages import Outage

log = logging.getLogger(__name__)
LOCK_TTL_S = 300
SWEEP_EVERY_S = scripts.SWEEP_EVERY_MS / 1000
SWEEP_BATCH = 100  # letters claimed at once
SWEEP_CLAIM_MS = 60_000  # a claimed letter is left to its claimer this long
LOCKERS = frozenset({"editor", "service"})  # sections are locked to edit them
MAX_SECTION = 200
# What surrounds the id in a gateway's heartbeat key (schemas.keys.alive_key), for the sweep.
_head, _, _tail = alive_key("\n").partition("\n")
ALIVE_AROUND = (_head, _tail)

router = APIRouter()


@dataclass
class Taken:
    """What an acquisition changed in Redis (ACQUIRE took the lock, or RENEW renewed the
    caller's own), and the compensating script that puts it back if the log refuses it."""

    key: str
    index: str
    section: str
    value: str
    index_ms: int
    lapsed: bytes = b""  # the lapsed entry ACQUIRE claimed from the index, until announced
    replaced: tuple[bytes, int] | None = None  # a renewal: the value it replaced, its ms left

    def undo(self) -> tuple[str, list[Any]]:
        """The script and its arguments (keys first): a new lock deleted and the entry it
        claimed back in the index, or a renewed one restored with the time it had left."""
        keys = [self.key, self.index, scripts.DUE]
        if self.replaced is None:
            return scripts.UNACQUIRE, [*keys, self.value, self.section, self.lapsed, self.index_ms]
        old, left_ms = self.replaced
        index_ms = left_ms + scripts.INDEX_SLACK_S * 1000
        return scripts.RESTORE, [*keys, self.value, old, left_ms, self.section, index_ms]


def key_of(letter_id: str, section: str) -> str:
    return f"lock:{letter_id}:{section}"


def index_of(letter_id: str) -> str:
    return f"locks:{letter_id}"


def away_of(letter_id: str) -> str:
    """Since when each attended lock's holder has been found gone: section -> "<n> <ms>"."""
    return f"{index_of(letter_id)}:away"


class GoneLetter(CollabError):
    """A lock's letter no store knows (Redis, PostgreSQL, the log): nothing of it can be
    logged, so its index entries are dropped instead of put back for ever."""


class Locks:
    def __init__(self, collab: Collab, ttl_s: int = LOCK_TTL_S) -> None:
        self.collab, self.ttl_s = collab, ttl_s
        self.release_after_leave_s = collab.ctx.settings.lock_release_after_leave_s
        self._sweeper: asyncio.Task[None] | None = None
        self._topic = collab.ctx.settings.topic(Topic.LETTERS)
        self._seen = restored.Seen()  # the process the marker named when last looked at

    @property
    def redis(self) -> Any:
        redis = self.collab.ctx.redis
        if redis is None:
            raise CollabError(503, "locks need Redis")
        return redis

    def start(self) -> None:
        if self.collab.ctx.redis is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever())

    async def _gated(self, script: str, keys: tuple[str, ...], *args: Any) -> Any:
        """ACQUIRE's or LAPSE's answer (gateway/restored.py `gated`): 503 while the restored
        marker is missing or stale, until the gateways' restore (steno_collab/lock_restore.py)
        or `backfill locks` put back what Redis lost."""
        try:
            ctx = self.collab.ctx
            return await restored.gated(
                self.redis, ctx.log, self._topic, script, keys, *args, wake=ctx.wake_restore
            )
        except LogError as exc:
            raise log_unavailable() from exc
        except restored.Unrestored:
            refused = restored.refusal_headers()
            raise CollabError(503, restored.UNRESTORED, headers=refused) from None

    async def _look(self) -> None:
        """The marker looked at (one INFO): what `_own` compares from now on if it names the
        running Redis process, else 503 as the gates' and the watcher woken. Also before a 409
        or 403 naming another holder, who may be an older snapshot's whom the log says released
        (the web client gives up a lock on a 409)."""
        seen = await restored.seen(self.redis)
        if seen is None:
            self.collab.ctx.wake_restore()
            raise CollabError(503, restored.UNRESTORED, headers=restored.refusal_headers())
        self._seen = seen

    async def _own(self, script: str, keys: tuple[str, ...], *args: Any) -> int:
        """RENEW's or RELEASE's answer (a renewal or release of the caller's own lock): 503 if
        the marker is missing or stale (`_current`), as an older snapshot's lock may be one the
        log says its holder released."""
        return int(await self._current(script, keys, *args))

    async def _current(self, script: str, keys: Sequence[str], *args: Any) -> Any:
        """The answer of a script that checks `same` (RENEW, RELEASE, LIST; no INFO), given the
        process the marker named when last looked at; if it no longer does (or Redis saved or
        restarted since), looked at again: 503 if missing or stale (`_look`)."""
        for _ in range(2):  # a save between the look and the script: one more try
            answer = await self.redis.eval(script, len(keys), *keys, *args, *self._seen.args())
            if answer != scripts.UNMARKED:
                return answer
            await self._look()
        raise CollabError(503, "Redis changed meanwhile, retry", headers={"Retry-After": "1"})

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def acquire(self, claims: Claims, letter_id: str, section: str) -> dict[str, Any]:
        meta = await self.collab.letter(claims, letter_id)
        _check_named(claims, section)
        # A name the rule refuses may still be renewed by its holder (granted before the rule
        # last tightened: refusing the renewal would lapse a lock its holder keeps using).
        refused = _refusal(section)  # `_take` answers it unless the caller holds the lock
        key = key_of(letter_id, section)
        attended = await self._present(letter_id, claims.sub)  # before anything is taken
        holder = user_ref(claims)
        expires_at = time.time() + self.ttl_s
        value = scripts.lock_value(holder.model_dump(), expires_at, uuid7(), attended)
        taken = await self._take(claims, letter_id, section, value, refused)
        try:
            if taken.lapsed:  # it timed out and nobody announced it yet (another instance's)
                await self._append_expired(letter_id, meta.firm_id, section, taken.lapsed)
                taken.lapsed = b""
            await self.collab.append(
                claims, meta, LockAcquired(section=section, holder=holder, ttl_s=self.ttl_s)
            )
        except Exception as exc:  # the log did not take it: Redis back as it was, then the 503
            if not _unconfirmed(exc):
                script, args = taken.undo()
                await self._undo(key, script, *args)
            raise
        return {"section": section, "holder": holder.model_dump(), "expires_at": iso(expires_at)}

    async def _take(
        self, claims: Claims, letter_id: str, section: str, value: str, refused: CollabError | None
    ) -> Taken:
        """The section's lock set to `value`: taken if free, renewed if the caller holds it;
        409 if another does. A name `refused` by the rule is only renewed: else that refusal."""
        key, index = key_of(letter_id, section), index_of(letter_id)
        taken = Taken(key, index, section, value, (self.ttl_s + scripts.INDEX_SLACK_S) * 1000)
        keys = (key, index, scripts.DUE, RESTORED)
        for _ in range(3):  # NX fails -> read -> the key may expire in between: retry
            if refused is None:
                fresh = (section, value, self.ttl_s, taken.index_ms)
                lapsed = await self._gated(scripts.ACQUIRE, keys, *fresh)
                if lapsed is not None:
                    taken.lapsed = lapsed
                    return taken
            current = await self.redis.get(key)
            if current is None:
                if refused is not None:
                    # Gone from a Redis that lost its data is 503 as for any name (`_look`): the
                    # restore may bring the holder's lock back, and a 422 makes clients drop it.
                    await self._look()
                    raise refused
                continue
            held = json.loads(current)
            if refused is not None and held["id"] != claims.sub:
                raise refused  # not a name to tell another's lock by
            if held["id"] != claims.sub:
                await self._look()
                raise CollabError(409, "locked", _locked_body(held))
            renewal = (current, value, self.ttl_s, section, taken.index_ms)
            left = await self._own(scripts.RENEW, keys, *renewal)
            if left:
                taken.replaced = current, int(left)
                return taken
        raise CollabError(409, "lock contended, retry")

    async def release(self, claims: Claims, letter_id: str, section: str) -> dict[str, Any]:
        meta = await self.collab.letter(claims, letter_id)
        _check_named(claims, section)
        key = key_of(letter_id, section)
        current = await self.redis.get(key)
        if current is None:
            await self._lapse(letter_id, meta.firm_id, section)
            raise CollabError(404, "not locked")
        held = json.loads(current)
        if held["id"] != claims.sub:
            await self._look()
            raise CollabError(403, "only the holder may release a lock", _locked_body(held))
        index = index_of(letter_id)
        left = await self._own(scripts.RELEASE, (key, index, RESTORED), current, section)
        if not left:
            raise CollabError(409, "lock changed, retry")
        try:
            await self.collab.append(
                claims, meta, LockReleased(section=section, holder=user_ref(claims))
            )
        except Exception as exc:  # still held, as the log says: the holder may retry
            if not _unconfirmed(exc):
                await self._unrelease(key, index, current, int(left), section)
            raise
        return {"section": section, "released": True}

    async def held(self, claims: Claims, letter_id: str) -> dict[str, Any]:
        meta = await self.collab.letter(claims, letter_id)
        index = index_of(letter_id)
        sections = sorted(await self.redis.hkeys(index))
        keys = [RESTORED, index, *(key_of(letter_id, s.decode()) for s in sections)]
        # None listed is no answer either while Redis may have lost them (a wipe takes the
        # index too): 503 until the restore, as the grants (the web page showed all free).
        held, lapsed = await self._current(scripts.LIST, keys, *sections)
        for raw, entry in zip(lapsed[::2], lapsed[1::2], strict=True):
            section = raw.decode()
            try:
                await self._announce(letter_id, meta.firm_id, section, entry)
            except CollabError as exc:  # a read still answers; a later look announces it
                log.warning("lock expiry of %s/%s: %s", letter_id, section, exc)
        locks = [
            {"section": section.decode(), **_locked_body(json.loads(value))}
            for section, value in zip(held[::2], held[1::2], strict=True)
        ]
        return {"locks": locks}

    async def _lapse(self, letter_id: str, firm_id: str, section: str) -> None:
        """Log `lock.expired` for the section's lock if it timed out and nobody did yet; 503 if
        Redis lost its locks and the restore has not run (it may bring this one back)."""
        key, index = key_of(letter_id, section), index_of(letter_id)
        lapsed = await self._gated(scripts.LAPSE, (key, index, RESTORED), section)
        if lapsed:
            await self._announce(letter_id, firm_id, section, lapsed)

    async def _announce(
        self, letter_id: str, firm_id: str | None, section: str, entry: bytes
    ) -> None:
        """Log `lock.expired` for a lapsed entry this instance claimed; if that fails, put the
        entry back so that whoever looks next announces it (still once)."""
        try:
            await self._append_expired(letter_id, firm_id, section, entry)
        except GoneLetter:
            raise  # nobody could announce it: not put back
        except Exception:
            key, index_ms = key_of(letter_id, section), (self.ttl_s + scripts.INDEX_SLACK_S) * 1000
            index = index_of(letter_id)
            await self._undo(
                key, scripts.UNCLAIM, key, index, scripts.DUE, section, entry, index_ms
            )
            raise

    async def _unrelease(
        self,
        key: str,
        index: str,
        value: bytes,
        left_ms: int,
        section: str,
    ) -> None:
        """Undo a release that could not be logged: the lock back as it was, if still free."""
        back = (b"", value, left_ms, section, left_ms + scripts.INDEX_SLACK_S * 1000)
        await self._undo(key, scripts.RESTORE, key, index, scripts.DUE, *back)

    async def _undo(self, key: str, script: str, *args: Any) -> bool:
        """Run a compensating script; if Redis fails too, the caller's own error still wins."""
        try:
            return bool(await self.redis.eval(script, 3, *args))
        except Exception as exc:
            log.warning("lock %s left as changed, the log did not take it: %r", key, exc)
            return False

    async def _append_expired(
        self, letter_id: str, firm_id: str | None, section: str, value: str | bytes
    ) -> None:
        # Attributed to the holder whose lock lapsed (from the lock's value); nobody acted.
        if firm_id is None:  # a sweep's: it may be of a letter never opened here
            meta = await self.collab.gateway.access.lookup(letter_id)
            if meta is None:
                raise GoneLetter(404, f"letter {letter_id} not found")
            firm_id = meta.firm_id
        held = json.loads(value)
        holder = UserRef(**{k: held[k] for k in UserRef.model_fields if k in held})
        service = Claims(holder.id, firm_id, holder.name, "service", 0.0)
        payload = LockExpired(section=section, holder=holder)
        await self.collab.append(service, LetterMeta(letter_id, firm_id, ""), payload)

    async def _present(self, letter_id: str, user: str) -> bool:
        keys = (presence_key(letter_id), attending_key(letter_id))
        return bool(await self.redis.eval(scripts.PRESENT, len(keys), *keys, user))

    async def sweep(self) -> None:
        """Look at every letter with locks now, due or not (the tests: no waiting for due times)."""
        await self._sweep_each(self._all_due())

    async def sweep_due(self) -> None:
        """Look at the letters due (claimed: other instances skip them meanwhile)."""
        await self._sweep_each(self._claim_due())

    async def _all_due(self) -> AsyncIterator[bytes]:
        for index in await self.redis.zrange(scripts.DUE, 0, -1):
            yield index

    async def _claim_due(self) -> AsyncIterator[bytes]:
        for _ in range(100):  # bounded: the rest waits for the next round
            due = await self.redis.eval(scripts.CLAIM, 1, scripts.DUE, SWEEP_BATCH, SWEEP_CLAIM_MS)
            for index in due:
                yield index
            if len(due) < SWEEP_BATCH:
                return

    async def _sweep_each(self, indexes: AsyncIterator[bytes]) -> None:
        """One round. A letter held back by the marker asks the log whether there is anything
        to restore (`_settle`); once one stays held back, the rest of the round asks no more
        and their SWEEPs read no marker (it is the whole Redis': it will not be set by the next
        letter's look). They still run: a letter with nothing to claim keeps its bookkeeping
        (a present holder's away mark cleared, its next look) while the restore waits."""
        held_back = False
        async for index in indexes:
            if not await self._sweep_letter(index.decode(), held_back):
                held_back = True

    async def _settle(self) -> bool:
        """For a sweep held back by the marker: whether it is current now (set if the log holds
        no record: nothing to restore, restored.settle)."""
        try:
            return await restored.settle(self.redis, self.collab.ctx.log, self._topic)
        except LogError:
            return False

    async def _sweep_letter(self, index: str, held_back: bool = False) -> bool:
        """Announce the letter's lapsed locks and release those of departed holders; what the
        log refuses is put back for a later sweep. Nothing while the marker is missing or stale
        (SWEEP): the restore may have to remove what it would announce; then, unless the round
        found it `held_back` already (SWEEP reads no marker then), the log is asked whether
        there is anything to restore (`_settle`). False if held back."""
        letter_id = index.removeprefix("locks:")
        keys = (
            index, presence_key(letter_id), away_of(letter_id), scripts.DUE,
            connections_key(letter_id), attending_key(letter_id), RESTORED,
        )  # fmt: skip
        after_ms = int(self.release_after_leave_s * 1000)
        known = "1" if held_back else ""
        args = (key_of(letter_id, ""), after_ms, connection_key(""), *ALIVE_AROUND, known)
        swept = await self.redis.eval(scripts.SWEEP, len(keys), *keys, *args)
        if swept == 0:  # the marker is missing or stale: left to the restore, then swept
            if held_back or not await self._settle():
                return False
            swept = await self.redis.eval(scripts.SWEEP, len(keys), *keys, *args)
            if swept == 0:
                return False
        lapsed, released = swept
        # Each item on its own: one the log refuses must not strand the others claimed above.
        gone = False
        for raw, entry in zip(lapsed[::2], lapsed[1::2], strict=True):
            try:
                await self._announce(letter_id, None, raw.decode(), entry)
            except GoneLetter:
                gone = True
            except Exception as exc:  # back in the index: a later look announces it
                log.warning("lock expiry of %s/%s: %r", letter_id, raw.decode(), exc)
        for raw, value, left in zip(released[::3], released[1::3], released[2::3], strict=True):
            section = raw.decode()
            try:
                await self._append_expired(letter_id, None, section, value)
            except GoneLetter:
                gone = True
            except Exception as exc:  # held again: a later sweep releases it
                await self._unrelease(key_of(letter_id, section), index, value, int(left), section)
                log.warning("lock release of %s/%s: %r", letter_id, section, exc)
        if gone:  # not swept again: its index lapses with its TTL, as one nobody looks at
            await self.redis.zrem(scripts.DUE, index)
            log.warning("locks of %s dropped: no store knows the letter", letter_id)
        return True

    async def _sweep_forever(self) -> None:
        outage = Outage()  # a WARNING per round was ~12 lines a minute while Redis was down
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                await self.sweep_due()
            except Exception as exc:  # Redis down: try again next round
                outage.failed(log, "lock sweep failed: %r", exc)
            else:
                outage.recovered(log, "lock sweep works again after %s", unit="failure")


def _unconfirmed(exc: Exception) -> bool:
    """A 504: the event was handed to the log and may still land (a stalled broker takes it
    when it wakes). Redis keeps what the request did, so the lock list says what the log most
    likely will (an undone grant whose `lock.acquired` landed would be held for ever in the
    audit, with no release or expiry); the caller checks the list before retrying."""
    return isinstance(exc, CollabError) and exc.status == 504


def _refusal(section: str) -> CollabError | None:
    """The 422 a grant of `section` gets, if any. A section is a name shown to collaborators
    and kept in the audit: one line, by the rule titles and version labels follow
    (gateway/api/names.py)."""
    if not section.strip():
        return CollabError(422, "section is blank")
    why = problem(section)
    if why is not None:  # the usual one as before: clients match it
        printable = why.startswith("one line")
        return CollabError(422, f"section: {why}" if not printable else _NOT_PRINTABLE)
    return None


_NOT_PRINTABLE = "section must be one line of printable characters"


def _check_named(claims: Claims, section: str) -> None:
    """A release's check: it only names a section someone holds, so the name rule is not applied
    (one granted before the rule last tightened is still released, not refused until its TTL)."""
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


@router.post(PATH + "/{section}", responses=errors(*AUTHENTICATED, 409, 503, 504))
async def post_lock(
    letter_id: str, section: str, locks: LocksDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await locks.acquire(claims, letter_id, section)


@router.delete(PATH + "/{section}", responses=errors(*AUTHENTICATED, 404, 409, 503, 504))
async def delete_lock(
    letter_id: str, section: str, locks: LocksDep, claims: ClaimsDep
) -> dict[str, Any]:
    return await locks.release(claims, letter_id, section)


@router.get(PATH, responses=errors(*AUTHENTICATED, 503))
async def get_locks(letter_id: str, locks: LocksDep, claims: ClaimsDep) -> dict[str, Any]:
    return await locks.held(claims, letter_id)
