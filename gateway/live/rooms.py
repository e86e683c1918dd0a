"""The letters this instance holds: loading on first join, idle unload, connection limits, and
the rescue of what a failed letter left unlogged (gateway/live/rescue.py)."""

import asyncio
import logging
import time
from collections import Counter

from eventlog.records import Entry
from gateway.access import LetterMeta
from gateway.auth import Claims
from gateway.context import Context
from gateway.live.buckets import UserKey, user_key
from gateway.live.rescue import Rescue
from gateway.live.room import Peer, Room
from schemas.events import Topic

log = logging.getLogger(__name__)
# The event loop's time a metrics scrape may spend looking at letters' pending parts.
PENDING_LOOK_S = 0.01


class Rooms:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._rooms: dict[str, Room] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_letter: Counter[str] = Counter()
        self._per_user: Counter[UserKey] = Counter()  # a firm's user: gateway/live/buckets.py
        self._rescues: dict[str, Rescue] = {}  # letters with entries a failed append left out
        ctx.metrics.letters_pending.set_function(self._count_unsettled)

    def _count_unsettled(self) -> int:
        """Letters held whose document holds pending parts, at a scrape (the /metrics route runs
        on the event loop): their parts looked at again, so one settled since by an update
        counts no more, at no cost per update. A look costs up to ms (a letter of thousands of
        Yjs clients): least recently looked first, within PENDING_LOOK_S a scrape; the rest
        count as last looked. An unloaded letter is not held."""
        held = [room for room in self._rooms.values() if room.holds_pending]
        until = time.monotonic() + PENDING_LOOK_S
        for room in sorted(held, key=lambda room: room.unsettled_seen):
            if time.monotonic() >= until:
                break
            room.unsettled()
        return sum(1 for room in held if room.holds_pending)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._rooms.values()))

    def get(self, letter_id: str) -> Room | None:
        """The room if it is held (loaded or loading) and not going away."""
        room = self._rooms.get(letter_id)
        return None if room is None or room.closing or room.failed else room

    # -- admission -----------------------------------------------------------------------------

    def admit(self, claims: Claims, letter_id: str) -> str | None:
        """Reserve a connection slot; the reason it is refused, or None."""
        s = self.ctx.settings
        if self._per_letter[letter_id] >= s.max_connections_per_letter:
            return "too_many_connections_letter"
        user = user_key(claims)
        if self._per_user[user] >= s.max_connections_per_user:
            return "too_many_connections_user"
        self._per_letter[letter_id] += 1
        self._per_user[user] += 1
        return None

    def release(self, claims: Claims, letter_id: str) -> None:
        user = user_key(claims)
        self._per_letter[letter_id] -= 1
        self._per_user[user] -= 1
        if self._per_letter[letter_id] <= 0:
            del self._per_letter[letter_id]
        if self._per_user[user] <= 0:
            del self._per_user[user]

    # -- joining and leaving -------------------------------------------------------------------

    async def join(self, meta: LetterMeta, conn: Peer) -> Room:
        """The loaded room with `conn` in it; Refused(4503) if the letter cannot be loaded."""
        room = await self.open(meta)
        room.add(conn)
        return room

    async def open(self, meta: LetterMeta) -> Room:
        while True:
            rescue = self._rescues.get(meta.letter_id)
            if rescue is not None:  # what the last room accepted is logged before a new load
                await rescue.ensure()  # Refused(4503) while the log is down
                continue
            room = self._rooms.get(meta.letter_id)
            if room is None:
                room = Room(self.ctx, meta.letter_id, meta.firm_id, self._gone)
                self._rooms[meta.letter_id] = room
                self.ctx.metrics.letters.set(len(self._rooms))
            if not room.closing:
                break
            await room.closed.wait()  # its last appends must land before we load again
        self._cancel_unload(meta.letter_id)
        await room.ready()
        if not room.conns:
            self._schedule_unload(room)  # in case nobody ever joins (REST reads)
        return room

    async def logged(self, letter_id: str, timeout_s: float) -> bool:
        """Whether everything this instance accepted for the letter so far is in the log,
        waiting up to `timeout_s`: the room's queue, and what a failed room left to its rescue
        (a named version cut before it would miss edits the instance had taken)."""
        try:
            async with asyncio.timeout(timeout_s):
                room = self._rooms.get(letter_id)  # a closing one too: it flushes
                if room is not None:  # returns early if an append fails: then it is rescued
                    await room.letters.flush()
                rescue = self._rescues.get(letter_id)
                return rescue is None or await rescue.landed(timeout_s)
        except TimeoutError:
            return False

    def leave(self, room: Room, conn: Peer, reason: str) -> None:
        room.leave(conn, reason)
        if not room.conns and not room.failed:
            self._schedule_unload(room)

    def _schedule_unload(self, room: Room) -> None:
        self._cancel_unload(room.letter_id)
        loop = asyncio.get_running_loop()
        self._timers[room.letter_id] = loop.call_later(
            self.ctx.settings.idle_unload_s, self._unload_soon, room
        )

    def _cancel_unload(self, letter_id: str) -> None:
        timer = self._timers.pop(letter_id, None)
        if timer is not None:
            timer.cancel()

    def _unload_soon(self, room: Room) -> None:
        self._timers.pop(room.letter_id, None)
        if room.conns or self._rooms.get(room.letter_id) is not room:
            return
        # Closing from now on, not from when the task first runs: a join in between would
        # be added to a room that is about to close (it waits for the unload, then reloads).
        room.closing = True
        task = asyncio.create_task(self._unload(room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unload(self, room: Room) -> None:
        try:
            await room.close()
        finally:
            self._gone(room)

    def _gone(self, room: Room, unlogged: list[Entry] | None = None) -> None:
        if self._rooms.get(room.letter_id) is room:
            del self._rooms[room.letter_id]
            self._cancel_unload(room.letter_id)
        room.closed.set()
        if unlogged:
            self._rescue(room.letter_id, unlogged)
        if room.failed:  # stop its append tasks; nothing of it is flushed any more
            task = asyncio.create_task(room.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.ctx.metrics.letters.set(len(self._rooms))

    def _rescue(self, letter_id: str, entries: list[Entry]) -> None:
        # The append that failed the room may be unconfirmed: the rescue waits for its outcome.
        unconfirmed = self.ctx.batcher(Topic.LETTERS).unconfirmed(letter_id.encode())
        rescue = self._rescues.get(letter_id)
        if rescue is not None:  # still pending: `_rescued` drops a rescue once it landed
            rescue.add(entries, unconfirmed)
            return
        topic = self.ctx.settings.topic(Topic.LETTERS)
        timeout = self.ctx.settings.append_timeout_s
        self._rescues[letter_id] = Rescue(
            self.ctx.log,
            topic,
            letter_id.encode(),
            entries,
            timeout,
            self._rescued,
            metrics=self.ctx.metrics,
            on_too_large=self.ctx.learn_refused,
            unconfirmed=unconfirmed,
        )

    def _rescued(self, rescue: Rescue) -> None:
        if self._rescues.get(rescue.letter_id) is rescue:
            del self._rescues[rescue.letter_id]

    async def close(self) -> None:
        """Flush and drop every room (shutdown), and try the rescues a last time."""
        for room in list(self._rooms.values()):
            room.closing = True
            await room.close()
            self._gone(room)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Together: each may wait for an unconfirmed append and try once more (two append
        # timeouts); one after another, a stalled log made the shutdown grow with the letters.
        rescues = list(self._rescues.values())
        closed = await asyncio.gather(*(r.close() for r in rescues), return_exceptions=True)
        for rescue, outcome in zip(rescues, closed, strict=True):
            if isinstance(outcome, BaseException):
                log.error("rescue of %s failed at shutdown: %r", rescue.letter_id, outcome)
        self._rescues.clear()
