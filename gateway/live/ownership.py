"""Who owns which Yjs client id on a letter: the first user to write structs under it.

A client that writes under another user's client id corrupts that user's text for good (their
later structs at the same clocks are dropped as duplicates), so struct blocks with NEW clocks
under an id owned by another user are refused (4403). Ownership is by user, not connection: a
reloaded y-websocket provider keeps its doc and clientID across reconnects. Each connection may
introduce at most `MAX_IDS_PER_CONNECTION` ids (one per tab; a few for undo-manager reloads).

Shared record: the Redis hash `clientid:<letterId>` (client id -> user id, HSETNX, TTL 24 h
refreshed on each look-up), shared by every gateway instance and surviving a restart. Redis is
asked once per (letter, id) that this instance has not seen yet, before the frame is applied.

The log is the durable record: a loaded letter's owners can be rebuilt from its `doc.update`
records (each names its user), an id owned by the user whose record first writes under it.
Without Redis that read runs in the background from the load on, so that no sync waits for it.
With Redis it runs only once Redis is found to have lost the owner of an id the loaded letter
has structs under (a FLUSHALL, a restart without persistence, the TTL): such an id is never
claimed by whoever asks next, but its log owner is written back (HSETNX, so that instances
healing at once agree); so does Redis down or slow (no answer within `REDIS_TIMEOUT_S`: the read
then starts, so such a claim waits up to twice that). Only a
claim of an id the loaded letter already has structs under waits for that read, bounded as Redis
is, and is refused with 4503 (reconnect and resync: the update is sent again) if the read has
not named its owner by then: claimed in memory, an id would go to whoever asks first, another
user too. Ids first written on other instances are learnt from their records in the tail. An
id whose first edit was never logged has no owner in the log (only Redis would know it): its
first claimant takes it. Details: docs/security.md.

Each such read scans the letter's log from its creation. After a Redis wipe every letter that
reopens needs one at once: at most `MAX_SCANS` run at once per gateway (`Scans`), the others
wait their turn (a claim waiting for one still gives up after `REDIS_TIMEOUT_S`).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from pycrdt import get_state

from gateway.errors import FORBIDDEN, LOG_UNAVAILABLE, TOO_LARGE, Refused
from gateway.preparse import STATE_LIMITS, DocShape, UpdateInfo, check_state_vector

log = logging.getLogger(__name__)
MAX_IDS_PER_CONNECTION = 4
OWNER_TTL_S = 24 * 3600
REDIS_TIMEOUT_S = 2.0  # only the claiming connection waits; the room never does
YIELD_EVERY = 100  # edits read from the log between turns of the event loop (~0.3 ms)
MAX_SCANS = 4  # letters' logs read for their owners at once per gateway (memory, log reads)


class Scans:
    """The reads of letters' logs for their owners running at once, at most `limit`."""

    def __init__(self, limit: int = MAX_SCANS) -> None:
        self._slots = asyncio.Semaphore(limit)
        self.running = 0
        self.most = 0  # the most that ran at once (tests read it)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._slots:
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                yield
            finally:
                self.running -= 1


def new_clients(info: UpdateInfo, shape: DocShape) -> list[int]:
    """Client ids under which the update writes clocks the letter does not know yet."""
    return [client for client, _, end in info.blocks if end > shape.known_clock(client)]


def written_first(update: bytes) -> list[int]:
    """The client ids whose first struct (clock 0) `update` holds: their first writer wrote it.
    pycrdt's state vector of an update lists exactly those (a section starting past clock 0 is
    left out), at ~0.6 us an edit against ~13 us for the pre-parser's full scan."""
    state = get_state(update)
    return [] if state == b"\x00" else list(check_state_vector(state, STATE_LIMITS))


Writes = Callable[[], AsyncIterable[tuple[str, bytes]]]


class Ownership:
    """One letter's owners: an in-memory cache of the Redis hash (or the record itself)."""

    def __init__(self, letter_id: str, redis: Any = None, scans: Scans | None = None) -> None:
        self._key = f"clientid:{letter_id}"
        self._redis = redis
        self._scans = scans or Scans()  # the gateway's (Context.owner_scans)
        self._owners: dict[int, str] = {}
        self._logged: set[int] = set()  # ids the loaded letter has structs under
        self._writes: Writes | None = None  # ... and how to read their owners from the log
        self._reading: asyncio.Task[bool] | None = None  # ... that read: True once all read
        self._healing: set[asyncio.Task[None]] = set()  # ... their write-backs to Redis

    def rebuild(self, writes: Writes, logged: Iterable[int]) -> None:
        """The letter is loaded with structs under the `logged` ids; `writes()` yields its
        (user, update) in log order, up to the load's end: who first wrote under each. Read at
        once without Redis; with it, only once Redis has lost an owner (`resolve`)."""
        self._logged, self._writes = set(logged), writes
        if self._redis is None:
            self._start_reading()

    def _start_reading(self) -> asyncio.Task[bool] | None:
        """The read of the owners from the log: started now unless one runs or has read them."""
        reading = self._reading
        if reading is None or (reading.done() and not _read_all(reading)):  # none, or it failed
            if not self._logged or self._writes is None:
                return None
            if self._redis is not None:
                log.warning("client id owners of %s asked of the log", self._key)
            reading = asyncio.create_task(self._read(self._writes()), name=f"owners:{self._key}")
            self._reading = reading
        return reading

    async def _read(self, writes: AsyncIterable[tuple[str, bytes]]) -> bool:
        first: dict[int, str] = {}
        todo, read, complete = set(self._logged), 0, True
        try:
            async with self._scans.turn():  # behind the other letters' reads past MAX_SCANS
                async for user, update in writes:
                    read += 1
                    if read % YIELD_EVERY == 0:  # a page of the log is read at once: let syncs in
                        await asyncio.sleep(0)
                    try:
                        written = written_first(update)
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except BaseException:  # not an update pycrdt reads (its panics are such)
                        continue
                    for client in written:
                        if client not in first:
                            first[client] = user
                            todo.discard(client)
                    if not todo:
                        break  # every id the letter has has its owner: the rest is later
        except Exception as exc:  # the log is unreachable: what was read still holds
            log.warning("client id owners of %s not read from the log: %r", self._key, exc)
            complete = False
        # Over what was claimed meanwhile: an id learnt from a later record of another instance.
        # Whoever wrote first in the log owns it.
        self._owners.update(first)
        if self._redis is not None and first:  # beside: a claim waits for the read, not Redis
            healing = asyncio.create_task(self._write_back(first))
            self._healing.add(healing)  # held: the loop keeps only a weak reference
            healing.add_done_callback(self._healing.discard)
        return complete

    async def _write_back(self, first: dict[int, str]) -> None:
        """Heal Redis with the log's owners; Redis' owners of those ids after (the log's, unless
        an entry it kept disagrees: instances healing at once agree on it)."""
        owners = await self._ask({client: user for client, user in first.items()})
        self._owners.update(owners or {})

    async def _ask(self, ids: dict[int, str | None]) -> dict[int, str] | None:
        """One round trip: HSETNX each id to its user (None: only read it), then read them all.
        Their owners in Redis; None if Redis is down or slow."""
        try:
            pipe = self._redis.pipeline(transaction=False)
            for client, user in ids.items():
                if user is not None:
                    pipe.hsetnx(self._key, str(client), user)
            pipe.hmget(self._key, [str(client) for client in ids])
            # Refreshed on reads too: owners still in use must outlive the last claim by a day.
            pipe.expire(self._key, OWNER_TTL_S)
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                replies = await pipe.execute()
        except Exception as exc:  # Redis down or slow: fall back to this instance's memory
            log.warning("client id ownership unavailable for %s: %r", self._key, exc)
            return None
        found = zip(ids, replies[-2], strict=True)
        return {client: owner.decode() for client, owner in found if owner is not None}

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        # Bounded (REDIS_TIMEOUT_S each): the other instances need them.
        await asyncio.gather(*self._healing, return_exceptions=True)

    def learn(self, user: str, update: bytes) -> None:
        """Another instance logged `update` for `user`, who owns the ids it writes under first
        (with Redis that instance claimed them there, but Redis may lose them)."""
        for client in written_first(update):
            self._owners.setdefault(client, user)

    def unknown(self, clients: list[int]) -> list[int]:
        return [client for client in clients if client not in self._owners]

    async def resolve(self, clients: list[int], user: str) -> None:
        """Claim `clients` for `user` in Redis where unclaimed; learn the owners of the rest.
        An id the loaded letter has structs under is not claimed: someone wrote under it, and
        if Redis no longer knows who, the log does. Without Redis, or with Redis down or slow:
        wait for the log's owners, if an id may be among them. Refused (4503, reconnect and
        resync) if the log could not name them in time: claimed in memory, the first to ask
        would write under another user's id."""
        if not clients:
            return
        if self._redis is not None:
            owners = await self._ask({c: None if c in self._logged else user for c in clients})
            if owners is not None:
                for client, owner in owners.items():
                    self._owners.setdefault(client, owner)
                # The logged ones with no owner (a fresh one only if Redis was wiped in between).
                lost = [client for client in clients if client not in owners]
                if lost:
                    await self._heal(lost, user)
                return
        await self._from_log(clients)

    async def _heal(self, lost: list[int], user: str) -> None:
        """Redis has no owner of the `lost` ids the letter has structs under: read them from the
        log (which writes them back), bounded as Redis is."""
        if not await self._from_log(lost):
            return
        rest = [client for client in lost if client not in self._owners]
        if rest:  # the log names nobody: their first edits were not logged
            owners = await self._ask({client: user for client in rest})
            for client, owner in (owners or {}).items():
                self._owners.setdefault(client, owner)

    async def _from_log(self, clients: list[int]) -> bool:
        """Wait for the log's owners of those of `clients` the loaded letter has structs under
        and this instance does not know: whether the whole log was read (True also when none
        was needed). Bounded as Redis is: a letter with a long log (a whole partition read,
        without the `letters` table to start at its creation) must not hold an edit for long.
        Refused if the read is not done by then, or failed, and one of them is still unknown."""
        pending = [c for c in clients if c in self._logged and c not in self._owners]
        if not pending:
            return True
        reading = self._start_reading()
        if reading is None:  # no way to read them (the room was not rebuilt from a log)
            return True
        done, _ = await asyncio.wait({reading}, timeout=REDIS_TIMEOUT_S)
        if done and _read_all(reading):
            return True
        if any(client not in self._owners for client in pending):
            log.warning("client id owners of %s not read from the log in time", self._key)
            raise Refused(LOG_UNAVAILABLE, "client_id_owner_unknown")
        return False

    def foreign(self, user: str, clients: list[int]) -> list[int]:
        """Those of `clients` another user owns."""
        return [client for client in clients if self._owners.get(client, user) != user]

    def claim(self, user: str, clients: list[int]) -> None:
        """Record `user` as the owner of those of `clients` nobody owns yet."""
        for client in clients:
            self._owners.setdefault(client, user)

    def check(self, user: str, used: set[int], clients: list[int]) -> None:
        """Refuse (4403 / 4413) unless `user` may write under every id of `clients`; then claim
        them. `used` is the set of ids this connection has written under; it grows here."""
        if used.issuperset(clients):  # the usual case: ids this connection already owns
            return
        check_count(used, clients)
        if self.foreign(user, clients):
            raise Refused(FORBIDDEN, "client_id_not_owned")
        self.claim(user, clients)
        used.update(clients)


def _read_all(reading: asyncio.Task[bool]) -> bool:
    """Whether a finished read of the owners read the whole log (not failed, not stopped)."""
    return not reading.cancelled() and reading.exception() is None and reading.result()


def check_count(used: set[int], clients: list[int]) -> None:
    """At most MAX_IDS_PER_CONNECTION ids per connection, checked before asking Redis."""
    # issuperset first: no set built per update for ids the connection already uses.
    if not used.issuperset(clients) and len(used.union(clients)) > MAX_IDS_PER_CONNECTION:
        raise Refused(TOO_LARGE, "too_many_client_ids")
