"""Follows the log for events appended by other gateway instances and hands them to our rooms.

Both topics are followed from their end offsets at start: a room loads everything before its
own load position from the log, so the tail only has to deliver what comes after. Every
instance sees every `letter.created`, which keeps access lookups fast after a create elsewhere.

`caught_up` gives reads of a held room read-your-writes across instances: a write another
instance acknowledged is in the log, so once the tail has handed our rooms the letter's
partition up to the end offset read at the request, the room's memory holds it.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from eventlog.records import Log, Record
from gateway.access import Access, LetterMeta
from gateway.context import Context
from gateway.live.rooms import Rooms
from schemas.envelope import EventDecodeError, decode_record
from schemas.events import LetterCreated, Topic

log = logging.getLogger(__name__)
MENTIONING = (b"comment.created", b"comment.replied")


class SharedEnds:
    """One partition's end offset, looked up once for all the reads that ask at once.

    Read-your-writes needs an end listed after the read arrived: a lookup already in flight
    then may predate a write acknowledged just before, so the read waits it out and shares the
    next one (started by the first read it wakes). Concurrent reads of a partition cost at most
    two lookups. A lookup is not cancelled with a read that gave up: the others may share it,
    and the log bounds it."""

    def __init__(self, lookup: Callable[[int], Awaitable[int]]) -> None:
        self._lookup = lookup
        self._running: dict[int, asyncio.Task[int]] = {}

    async def end(self, partition: int) -> int:
        before = self._running.get(partition)
        if before is not None:
            await asyncio.wait([before])  # in flight when we came: not ours to trust
        running = self._running.get(partition)  # else one started since, by a read woken with us
        if running is None or running is before:
            running = asyncio.ensure_future(self._lookup(partition))
            self._running[partition] = running
            running.add_done_callback(lambda task: self._done(partition, task))
        return await asyncio.shield(running)

    def _done(self, partition: int, task: "asyncio.Task[int]") -> None:
        if self._running.get(partition) is task:
            del self._running[partition]
        if not task.cancelled():
            task.exception()  # read, for a lookup every read gave up on

    def cancel(self) -> None:
        for task in self._running.values():
            task.cancel()


class Tail:
    def __init__(self, ctx: Context, rooms: Rooms, access: Access) -> None:
        self.ctx, self.rooms, self.access = ctx, rooms, access
        self._tasks: list[asyncio.Task[None]] = []
        self._me = ctx.gateway_id.encode()
        # The letters topic: per partition, the offset of the next record to hand over (None
        # without a tail); `_moved` is set, and replaced, after each batch handed over.
        self._letters_at: dict[int, int] | None = None
        self._moved = asyncio.Event()
        topic = ctx.settings.topic(Topic.LETTERS)
        self._ends = SharedEnds(lambda partition: ctx.log.end_offset(topic, partition))

    async def start(self) -> None:
        if self.ctx.settings.log_url is None:
            # The embedded log takes one writer process (a file lock says so): this one. No other
            # gateway can append, so there is nothing to follow, and following our own appends
            # cost a read of every partition after every commit.
            return
        for kind in (Topic.LETTERS, Topic.PRESENCE):
            topic = self.ctx.settings.topic(kind)
            positions = await self.ctx.log.end_offsets(topic)
            if kind is Topic.LETTERS:
                self._letters_at = positions  # _follow moves it on
            task = asyncio.create_task(self._follow(self.ctx.log, topic, positions))
            self._tasks.append(task)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._ends.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def caught_up(self, letter_id: str, timeout_s: float) -> bool:
        """Whether every record of the letter's partition logged before this call has been
        handed to our rooms, waiting at most `timeout_s`: one lookup of that partition's end,
        shared with the reads asking at once (SharedEnds). True at once without a tail (the
        embedded log: this process is its only writer). LogError if the log cannot tell."""
        if self._letters_at is None:
            return True
        at = self._letters_at
        topic = self.ctx.settings.topic(Topic.LETTERS)
        partition = self.ctx.log.partition_for(topic, letter_id.encode())
        try:
            async with asyncio.timeout(timeout_s):
                end = await self._ends.end(partition)
                while at.get(partition, 0) < end:
                    await self._moved.wait()
        except TimeoutError:
            return False
        return True

    async def _follow(self, log_: Log, topic: str, positions: dict[int, int]) -> None:
        while True:
            try:
                async with contextlib.aclosing(log_.follow(topic, dict(positions))) as batches:
                    async for batch in batches:
                        for record in batch:
                            self._deliver(record)
                            positions[record.partition] = record.offset + 1
                        self._moved.set()  # wake the reads waiting in caught_up
                        self._moved = asyncio.Event()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the log is down: rooms notice through their appends
                log.warning("tail of %s interrupted: %r; resuming", topic, exc)
                await asyncio.sleep(1.0)

    def _deliver(self, record: Record) -> None:
        headers = dict(record.headers)
        kind = headers.get("type")
        if kind not in (b"letter.created", *MENTIONING) and (
            headers.get("gw") == self._me or self.rooms.get(record.key.decode()) is None
        ):
            return  # ours (applied when we accepted it), or a letter we do not hold
        try:
            event = decode_record(record.key, record.value, record.headers)
        except EventDecodeError as exc:
            log.warning(
                "undecodable record %s/%s@%s: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            self.ctx.metrics.refuse("undecodable_record")
            return
        if isinstance(event.payload, LetterCreated):
            created = event.payload
            self.access.remember(LetterMeta(event.letter_id, created.firm_id, created.title))
        if event.envelope.gw == self.ctx.gateway_id:
            return
        if kind in MENTIONING and self.ctx.remote_comments is not None:
            self.ctx.remote_comments(event)  # mentioned users may be on any letter (issue 7)
        room = self.rooms.get(event.letter_id)
        if room is None:
            return
        try:
            room.apply_remote(event)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a bad record, or a pycrdt panic: skip it
            log.warning("letter %s: remote event refused: %r", event.letter_id, exc)
            self.ctx.metrics.refuse("remote_event_error")
