"""The resolve or reopen this gateway appended last to each thread, until the projector has it.

A resolve or reopen appends nothing when a store folded to the log's end says the thread is so
already (resolving.set_resolved). While the projector is down or behind, and PostgreSQL too,
nothing is folded to the end: a double click's second request would log the first's event
again (the state is the same; one more audit row, kept for good). But this gateway knows what
it appended: a request repeating its last flag of the thread, while the projector has not
folded that record, appends nothing either. Once it has, Redis, which the request reads first,
answers (with whatever came after it), and the memory is dropped. PostgreSQL's fold does not
retire it: the first read would still be Redis' copy from before it.

Another instance may have changed the thread since, and no store shows it yet: so the memory
is trusted only while the log itself, read from our record to its end, holds no resolve, reopen
or delete of the thread after it. That read is bounded: it happens only while the projector
has not folded our record, starts at most `TTL_S` back, and stops after `MAX_SCAN` records;
past that, or on a log error, the memory is dropped and the repeat logged (harmless). What
remains: a change appended elsewhere but not yet in the log when we read it is ordered after
ours by the log, a valid outcome (README "Comments").

The memory is one gateway's (`Context.flagged`), not the process': two gateways in one process
(tests, an embedded setup) each know only their own appends. This module imports nothing that
imports the gateway's context, which holds it (resolving.py checks it against the stores).
"""

import asyncio
import weakref

from cachetools import TTLCache

from eventlog.errors import LogError
from eventlog.records import Log, Record
from schemas.envelope import EventDecodeError, decode_record
from schemas.events import (
    EVENT_TYPES,
    CommentDeleted,
    CommentReopened,
    CommentResolved,
)

MAX_THREADS = 10_000  # threads remembered at once; the least recently flagged go first
# How long a flag is trusted without a store that has it: a double click's second request
# comes within a second; beyond this, a repeat is logged again (harmless) rather than read
# the log further back.
TTL_S = 60.0
# Records of the letter's partition (all its letters' Yjs updates too) read after ours at most;
# a busier partition is not worth reading through to save one audit row.
MAX_SCAN = 2_000
SCAN_BATCH = 500
# What may change the thread after our record (a delete may leave it gone).
_CHANGES = frozenset(
    spec.type
    for spec in EVENT_TYPES.values()
    if spec.model in (CommentResolved, CommentReopened, CommentDeleted)
)

Key = tuple[str, str]  # letter id, thread id


class Flagged:
    """(letter, thread) -> (resolved, the record's offset) of this gateway's last such append,
    and the lock each thread's check and append take. Used on the event loop, under the
    thread's lock (resolving.set_resolved)."""

    def __init__(self, max_threads: int = MAX_THREADS, ttl_s: float = TTL_S) -> None:
        self._last: TTLCache[Key, tuple[bool, int]] = TTLCache(max_threads, ttl_s)
        # (letter id, thread id) -> the lock the thread's resolves and reopens take on this
        # instance (gone when unused)
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, letter_id: str, thread_id: str) -> asyncio.Lock:
        return self._locks.setdefault((letter_id, thread_id), asyncio.Lock())

    def note(self, letter_id: str, thread_id: str, resolved: bool, offset: int) -> None:
        self._last[(letter_id, thread_id)] = (resolved, offset)

    def forget(self, letter_id: str, thread_id: str) -> None:
        """Before an append: one whose outcome is unknown (504) leaves nothing to go by; and
        once a store has folded the record, or the log may say otherwise."""
        self._last.pop((letter_id, thread_id), None)

    def recalled(self, letter_id: str, thread_id: str) -> tuple[bool, int] | None:
        """Whether this gateway last resolved (True) or reopened (False) the thread, and that
        record's offset; None if it does not know (it never did, or forgot)."""
        return self._last.get((letter_id, thread_id))


async def untouched_since(
    log: Log, topic: str, letter_id: str, thread_id: str, offset: int
) -> bool:
    """Whether the log, read from after `offset` to its end, holds no resolve, reopen or delete
    of the thread; False when it cannot tell (a log error, or more than MAX_SCAN records)."""
    key = letter_id.encode()
    partition = log.partition_for(topic, key)
    at, read = offset + 1, 0
    try:
        end = (await log.end_offsets(topic)).get(partition, 0)
        while at < end:
            if read >= MAX_SCAN:
                return False
            batch = await log.read(topic, partition, at, min(SCAN_BATCH, MAX_SCAN - read))
            if not batch:  # the end moved back (a replaced log): nothing to go by
                return False
            for record in batch:
                if record.key == key and _changes(record, thread_id):
                    return False
            at, read = batch[-1].offset + 1, read + len(batch)
    except LogError:
        return False  # the append that follows reports the log's state
    return True


def _changes(record: Record, thread_id: str) -> bool:
    """Whether a record of the letter resolves, reopens or deletes in the thread: only its type
    header is looked at for the others (most are Yjs updates). One that is no valid event is
    skipped, as the projector and snapshotter skip it."""
    kind = next((v for name, v in record.headers if name == "type"), b"").decode(errors="replace")
    if kind not in _CHANGES:
        return False
    try:
        event = decode_record(record.key, record.value, record.headers)
    except EventDecodeError:
        return False
    return getattr(event.payload, "thread_id", None) == thread_id
