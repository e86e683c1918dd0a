"""Backfill of section locks: the locks the log says are held, back into a Redis that lost them
(wiped, replaced, restored without them).

Locks are the gateway's coordination keys, not a projection: no consumer folds them, since a
lock re-created by a lagging fold after its release would be wrong. This runs once, on an
operator's word. Per letter, its lock events in log order (the letters topic up to its end at
the start): a section whose last event is `lock.acquired` and whose record time + `ttl_s` is
still ahead (Redis' clock) is restored for what is left of that TTL, in the gateway's own value
with its index entry and `locks-due` (lock_scripts.RESTORE_LOGGED: never over an existing key
or entry, so a lock granted since the loss wins and a rerun restores nothing new). The record
time is the log's, a few ms after the gateway set its key: a restored lock ends that much later.

A Redis back from an older snapshot (a restart on an old dump, a backup, a promoted replica) has
keys and index entries older than the log: a lock released since, or taken by another user, and
entries of expiries logged since, which the sweep would log again. So a restore of every letter
that found the marker missing or stale reconciles: every section the log knows is set to its last
event's word, for the letters read (a release or expiry counts only if it names the holder of the
section's last acquisition: one naming an earlier holder is a late or repeated record, `Letter`).
A live acquisition: key and entry set to the restored value, over another holder's (or the
same holder's older one), unless the holder's own key ends later (renewed after the read);
lapsed: no key, and the logged holder's entry (his, or written), so that the sweep, which waited
for the restore, announces his expiry once; released or expired: no key, no entry
(lock_scripts.RESTORE_FREED).
Safe while the gates answer 503: no grant since the loss, so every key is the snapshot's or
restored, and a renewal or release compares the exact value it read.
Each script reads the marker and only adds once it names the running Redis (grants run again: a
lock taken since is never touched); a rerun with the marker current, and a restore of chosen
letters, only add. A section the log never mentions is left as it is: a key of the snapshot had
its `lock.acquired` logged (a 504'd grant whose record never landed, kept by the gateway all the
same, is the exception) and none is made unlogged while the gates are closed.

`attended` is what the gateway would have found: whether the holder had a session open on the
letter (`session.joined` without its `session.left`) at the acquisition. There is no away mark:
the sweep starts counting from its first look after the restore, so a holder of an attended
lock who is not on the letter then (presence, or a live gateway's vouch, renewed with its
heartbeat within 10 s of the loss) loses it `lock_release_after_leave_s` later, with
`lock.expired`; a backend's lock (never attended) keeps its TTL, as when granted.

Races with the gateways, which serve meanwhile: a section another user took after the loss is
held (not restored). One he took and released between this read and the restore would get its
old holder back, against the log: so after restoring, the records appended since the read are
read too, and a restored lock whose section has a lock event there is taken back
(lock_scripts.UNRESTORE) unless its holder already renewed or released it; so is a lapsed one's
entry (a release or expiry landing after the read: not announced twice).

The same read restores the gateway's other keys that only the log can give back: the
`Idempotency-Key` claims of creates (the `letter.created`, `comment.created` or
`comment.replied` that carries one, whose record time + `idempotency_ttl_s` is still ahead; of
records naming the same claim, a comment's repeats after a 504, the last), settled, a comment's
with its ids, in the gateway's own format and under the name it looks at after its claim's own
(gateway/api/idempotency.py, `restore`: never over an existing key). No take-back is needed: a
create appended after the read claimed its key in this Redis.

A restore of every letter (`restore_all`) ends by setting `schemas.keys.RESTORED`: until then
the gateways refuse lock grants and keyed creates with 503 (gateway/restored.py), so none is
made between the loss and the restore (the races above remain for a rerun while they grant
again). One of chosen letters sets nothing. The gateways run it themselves when they find the
marker missing (steno_collab/lock_restore.py), `backfill locks` on an operator's word: one at a
time, under the lease `schemas.keys.RESTORING` (tools/lease.py), and the marker is set only
while the run still holds it, so a wipe during the run (which took the locks restored so far)
leaves it missing for the next run.
"""

import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from eventlog import Record
from gateway.api import idempotency
from gateway.collab import lock_scripts as scripts
from gateway.collab.locks import index_of, key_of
from gateway.restored import present, run_id
from schemas.envelope import EventDecodeError, decode_record
from schemas.events import (
    CommentCreated,
    CommentReplied,
    CreateKey,
    LetterCreated,
    LockAcquired,
    LockExpired,
    LockReleased,
    SessionJoined,
    SessionLeft,
)
from schemas.ids import uuid7
from schemas.keys import RESTORED, RESTORING
from tools.lease import lease
from tools.progress import Meter
from tools.sources import Sources

LOCK_EVENTS = frozenset({b"lock.acquired", b"lock.released", b"lock.expired"})
KEYED = frozenset({b"letter.created", b"comment.created", b"comment.replied"})  # may hold a claim
READ = LOCK_EVENTS | KEYED | {b"session.joined", b"session.left"}
PAGE = 1000
LEASE_S = 60.0  # renewed every 20 s while the run lasts; a dead run's lapses this long after
WAIT_S = 1.0  # an operator's run waiting for another's lease: how often it tries again
MARK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[2], ARGV[2]) end
return false
"""
Ranges = dict[int, tuple[int, int]]  # partition -> [start, end)


@dataclass(frozen=True, slots=True)
class Held:
    """A section whose last event so far is an acquisition."""

    holder: dict[str, Any]
    deadline_ms: int  # record time + ttl_s
    attended: bool


@dataclass(frozen=True, slots=True)
class Logged:
    """A create's key claim as its record carries it."""

    claim: CreateKey
    at_ms: int  # the record's time
    answer: dict[str, str] | None = None  # a comment's ids, which a repeat answers


@dataclass
class Letter:
    """One letter's fold: its open sessions, its sections' last lock event (Held, or None:
    released or expired), its creates' key claims (its own, its comments')."""

    sessions: dict[str, str] = field(default_factory=dict)  # conn id -> user id
    sections: dict[str, Held | None] = field(default_factory=dict)
    claims: dict[str, Logged] = field(default_factory=dict)  # by scoped hash: the last

    def apply(self, record: Record) -> None:
        try:
            payload = decode_record(record.key, record.value, record.headers).payload
        except EventDecodeError:
            return  # poison: every consumer skips it
        if isinstance(payload, SessionJoined):
            self.sessions[payload.conn_id] = payload.user.id
        elif isinstance(payload, SessionLeft):
            self.sessions.pop(payload.conn_id, None)
        elif isinstance(payload, LockAcquired):
            attended = payload.holder.id in self.sessions.values()
            deadline = record.timestamp + payload.ttl_s * 1000
            self.sections[payload.section] = Held(payload.holder.model_dump(), deadline, attended)
        elif isinstance(payload, LockReleased | LockExpired):
            # Only its holder's release or expiry ends a lock: one naming an earlier holder (an
            # expiry logged again from an entry an older snapshot brought back, by a gateway
            # whose sweep predates its marker check; a release that landed after the next
            # grant's record) leaves the section to the later holder.
            held = self.sections.get(payload.section)
            if held is None or held.holder["id"] == payload.holder.id:
                self.sections[payload.section] = None
        elif isinstance(payload, LetterCreated) and payload.idempotency is not None:
            self.claims[payload.idempotency.key] = Logged(payload.idempotency, record.timestamp)
        elif isinstance(payload, CommentCreated | CommentReplied) and payload.idempotency:
            answer = {"comment_id": payload.comment_id}
            if isinstance(payload, CommentCreated):
                answer = {"thread_id": payload.thread_id, **answer}
            logged = Logged(payload.idempotency, record.timestamp, answer)
            self.claims[payload.idempotency.key] = logged


@dataclass
class Tally:
    """Restores by RESTORE_LOGGED's (or idempotency RESTORE's) answer: -1 lapsed, 0 already
    there (granted or claimed since the loss, or restored before), else restored."""

    restored: int = 0
    held: int = 0
    lapsed: int = 0
    corrected: int = 0  # a reconcile's: keys or entries of an old snapshot the log contradicts

    def add(self, left: int) -> bool:
        """Count one answer; whether it restored."""
        if left < 0:
            self.lapsed += 1
        elif left == 0:
            self.held += 1
        else:
            self.restored += 1
        return left > 0

    def __str__(self) -> str:
        line = f"{self.restored:,} restored, {self.held:,} already held, {self.lapsed:,} lapsed"
        if self.corrected:
            line += f", {self.corrected:,} corrected (older than the log)"
        return line


@dataclass
class Counts:
    locks: Tally = field(default_factory=Tally)
    keys: Tally = field(default_factory=Tally)  # idempotency claims
    withdrawn: int = 0  # locks restored, then taken back: the log moved on meanwhile
    unmarked: bool = False  # a restore of every letter that lost its lease: RESTORED not set

    def line(self, seconds: float) -> str:
        line = f"locks: {self.locks}"
        if self.keys.restored or self.keys.held or self.keys.lapsed:
            line += f"; idempotency keys: {self.keys}"
        line += f" in {seconds:.1f} s"
        if self.withdrawn:
            line += f" ({self.withdrawn:,} taken back: the log moved on meanwhile)"
        if self.unmarked:
            line += " (Redis lost the run's lease, wiped again? Run it again)"
        return line


async def rebuild(src: Sources, letters: Sequence[str] | None, meter: Meter | None) -> Counts:
    """Restore the live locks of `letters` (None: every letter, `restore_all`) from the log."""
    if letters is None:
        counts = await restore_all(src, meter, waiting=partial(_waiting, meter))
        assert counts is not None  # it waited for the lease
        return counts
    return await _rebuild(src, letters, meter)


async def restore_all(
    src: Sources,
    meter: Meter | None = None,
    *,
    waiting: Callable[[], None] | None = None,
    starting: Callable[[], None] | None = None,
) -> Counts | None:
    """Restore every letter's locks and claims from the log, then set `RESTORED`, under the
    lease. `waiting` (an operator's run): called once if another run holds the lease, then
    the run waits for it and restores all the same, a rerun. Without it (a gateway's): None
    when another run holds the lease, or has set the marker by the time the lease is ours (one
    naming this Redis process: a stale one, back with a restart from an older snapshot since
    the caller looked, is restored over). `starting`: called once the lease is ours, before the
    restore."""
    assert src.redis is not None
    wait_s = None if waiting is None else WAIT_S
    if waiting is not None and await src.redis.exists(RESTORING):
        waiting()
    async with lease(src.redis, RESTORING, LEASE_S, wait_s=wait_s) as token:
        if token is None or (waiting is None and await present(src.redis)):
            return None
        if starting is not None:
            starting()
        # The value names the Redis process the restore wrote to, asked before it: one
        # restarted during the run (from a snapshot, its writes lost) is found stale later.
        ident = await run_id(src.redis)
        # Missing or stale: no grant since (the gates' 503), what Redis holds is an old
        # snapshot's or restored, and the log's word replaces it. Current (an operator's rerun
        # while they grant): only what Redis lacks is added.
        reconcile = waiting is None or not await present(src.redis)
        counts = await _rebuild(src, None, meter, ident if reconcile else "")
        # The gateways grant locks and keyed creates again; not if a wipe took the lease.
        keys = (RESTORING, RESTORED)
        counts.unmarked = not await src.redis.eval(MARK, len(keys), *keys, token, ident)
        return counts


def _waiting(meter: Meter | None) -> None:
    out = sys.stderr if meter is None else meter.out
    print("locks: waiting for the restore another process runs", file=out, flush=True)


async def _rebuild(
    src: Sources, letters: Sequence[str] | None, meter: Meter | None, reconcile: str = ""
) -> Counts:
    """`reconcile`: '' (add what Redis lacks), or the run_id read before the restore (the log
    decides every section it knows, while the marker does not name that run_id)."""
    assert src.redis is not None
    chosen = None if letters is None else {lid.encode() for lid in letters}
    read = await _ranges(src, chosen, None)
    if meter is not None:
        meter.start("locks", sum(end - start for start, end in read.values()), unit="records")
    folds: dict[bytes, Letter] = {}
    async for record in _records(src, read, chosen, READ, meter):
        folds.setdefault(record.key, Letter()).apply(record)
    if meter is not None:
        meter.finish()
    counts, restored = Counts(), {}
    await _restore_keys(src, folds, counts)
    for key, fold in folds.items():
        letter_id = key.decode()
        freed = []
        for section, held in fold.sections.items():
            if held is None:
                freed.append(section)
                continue
            value = await _restore(src, letter_id, section, held, counts, reconcile)
            if value is not None:
                restored[letter_id, section] = value
        if reconcile and freed:
            await _free(src, letter_id, freed, reconcile, counts)
    if restored:
        await _withdraw_overtaken(src, read, restored, counts)
    return counts


async def _restore_keys(src: Sources, folds: dict[bytes, Letter], counts: Counts) -> None:
    """Write back the creates' idempotency claims whose TTL is still ahead (module docstring):
    of a key's claims in several letters (reused once its claim had lapsed), the last."""
    assert src.redis is not None
    last: dict[str, tuple[Logged, str]] = {}
    for key, fold in folds.items():
        for scoped, logged in fold.claims.items():
            if scoped not in last or last[scoped][0].at_ms < logged.at_ms:
                last[scoped] = (logged, key.decode())
    ttl_ms = src.settings.idempotency_ttl_s * 1000
    seconds, micros = await src.redis.time()
    now_ms = seconds * 1000 + micros // 1000  # the long lapsed cost no round trip
    for logged, letter_id in last.values():
        deadline_ms = logged.at_ms + ttl_ms
        if deadline_ms <= now_ms:
            counts.keys.add(-1)
            continue
        left = await idempotency.restore(
            src.redis, logged.claim, letter_id, deadline_ms, logged.answer
        )
        counts.keys.add(left)


async def _restore(
    src: Sources, letter_id: str, section: str, held: Held, counts: Counts, reconcile: str = ""
) -> str | None:
    """The value to take back if the log moved on since its read: one restored where Redis had
    no key, or a reconcile's lapsed one (its entry, written for the sweep to log the expiry,
    another holder's replaced or not: -1, -2); None for a live lock Redis held (0) or had
    another holder's key for (2), which was there before the restore."""
    assert src.redis is not None
    value = scripts.lock_value(held.holder, held.deadline_ms / 1000, uuid7(), held.attended)
    keys = (key_of(letter_id, section), index_of(letter_id), scripts.DUE, RESTORED)
    index_ms = scripts.INDEX_SLACK_S * 1000
    args = (section, value, held.deadline_ms, index_ms, held.holder["id"], reconcile)
    answer = int(await src.redis.eval(scripts.RESTORE_LOGGED, len(keys), *keys, *args))
    if answer in (2, -2):  # another holder's key or entry, of an older snapshot, replaced
        counts.locks.corrected += 1
        return value if answer == -2 else None
    restored = counts.locks.add(answer)
    return value if restored or (reconcile and answer < 0) else None


async def _free(
    src: Sources, letter_id: str, sections: list[str], reconcile: str, counts: Counts
) -> None:
    """A reconcile's: the sections the log says are free lose what an older snapshot kept."""
    assert src.redis is not None
    keys = (index_of(letter_id), RESTORED)
    for at in range(0, len(sections), PAGE):
        chunk = sections[at : at + PAGE]
        args = (key_of(letter_id, ""), reconcile, *chunk)
        counts.locks.corrected += int(
            await src.redis.eval(scripts.RESTORE_FREED, len(keys), *keys, *args)
        )


async def _withdraw_overtaken(
    src: Sources, read: Ranges, restored: dict[tuple[str, str], str], counts: Counts
) -> None:
    """Take back the restored locks whose sections had lock events after the read (module
    docstring): the log's last word on them is not the acquisition restored."""
    assert src.redis is not None
    letters = {lid.encode() for lid, _ in restored}
    since = await _ranges(src, letters, read)
    async for record in _records(src, since, letters, LOCK_EVENTS, None):
        try:
            payload = decode_record(record.key, record.value, record.headers).payload
        except EventDecodeError:
            continue
        if not isinstance(payload, LockAcquired | LockReleased | LockExpired):
            continue
        letter_id, section = record.key.decode(), payload.section
        value = restored.pop((letter_id, section), None)  # its first event since decides
        if value is None:
            continue
        keys = (key_of(letter_id, section), index_of(letter_id))
        if await src.redis.eval(scripts.UNRESTORE, len(keys), *keys, value, section):
            counts.locks.restored -= 1
            counts.withdrawn += 1


async def _ranges(src: Sources, letters: set[bytes] | None, after: Ranges | None) -> Ranges:
    """The partitions to read (those of `letters`, or all), from the log's start (or from where
    `after` ended) to their end now."""
    topic = src.letters_topic
    starts, ends = await src.log.start_offsets(topic), await src.log.end_offsets(topic)
    wanted = None if letters is None else {src.log.partition_for(topic, k) for k in letters}
    ranges = {}
    for partition, end in ends.items():
        if wanted is not None and partition not in wanted:
            continue
        start = starts.get(partition, 0) if after is None else after.get(partition, (0, 0))[1]
        ranges[partition] = (start, end)
    return ranges


async def _records(
    src: Sources,
    ranges: Ranges,
    letters: set[bytes] | None,
    types: frozenset[bytes],
    meter: Meter | None,
) -> AsyncIterator[Record]:
    """The records of `ranges` of these types (the `type` header, read before any payload is
    decoded: most records are edits) and letters, in each partition's order."""
    done = 0
    for partition, (start, end) in sorted(ranges.items()):
        offset = start
        while offset < end:
            batch = await src.log.read(
                src.letters_topic, partition, offset, min(PAGE, end - offset)
            )
            if not batch:
                break
            for record in batch:
                if record.offset >= end:
                    break
                if letters is not None and record.key not in letters:
                    continue
                if dict(record.headers).get("type") in types:
                    yield record
            done += min(batch[-1].offset + 1, end) - offset
            offset = batch[-1].offset + 1
            if meter is not None:
                meter.advance_to(done)
