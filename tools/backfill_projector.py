"""Backfill of the projector: its own consumer (`projector.consumer.Projector`: fold + fenced
Redis writes) run over the log up to the end offsets seen at the start, then stopped; in one
process, or in several that each fold a share of the partitions (one core each: the fold is
CPU-bound Python), as several projector instances share a topic.

Resumable for free: the projector stores its positions in Redis atomically with the state, so
an interrupted run leaves a consistent prefix and the next run continues from it. A reset
deletes every projector-owned key first (never the gateway's `lock:*`, `locks:*`, `gateway:*`);
a marker key remembers that a reset is under way, so a rerun after an interruption does not
wipe again.
A whole rebuild holds a lease (tools/backfill.py); every write it makes to Redis (its commits,
its wipe's batches, its reset marker) is fenced on it: once another run took it over (this one
paused past its TTL), it writes nothing more and stops with `LeaseLost`, even before its lease's
renewal finds out.
For chosen letters, the projector's reload (`projector.reload.reload_letters`) rebuilds each
letter from the log alone up to the stored position of its partition, written with a fence; the
notifications its stored state had and the rebuilt one lacks are deleted, as for a letter the
projector reloads (`store.Write.notified`).
"""

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import uvloop
from redis.asyncio import Redis

from eventlog.factory import open_log
from projector.consumer import Projector
from projector.metrics import Metrics
from projector.notes import note_views
from projector.reload import Versions, reload_letters
from projector.settings import ProjectorSettings
from projector.store import OWN_KEYS, TP, LeaseNotHeld, Store, Write, letter_key
from schemas.events import Topic
from schemas.keys import (
    LIVE_STATE_PATTERNS,
    comments_key,
    connection_key,
    connections_key,
    meta_key,
    presence_key,
    recent_key,
    ydoc_key,
    ydoc_offset_key,
)
from schemas.quarantine import QUARANTINE_KEY
from schemas.rebuilds import PROJECTOR_RESET
from schemas.settings import Settings
from steno_collab.processes import exit_with_parent
from tools.lease import Held, LeaseLost, fenced
from tools.progress import Meter
from tools.sources import Sources

# Also what the gateway reads: comments from PostgreSQL, notifications 503 while it is there.
RESET_MARKER = PROJECTOR_RESET
OWNED = (*LIVE_STATE_PATTERNS, OWN_KEYS)
POLL_S = 0.1
LEASE_LOST_EXIT = 3  # a worker process's exit code when its lease was found lost


class LeasedStore(Store):
    """The projector's store whose writes land only while `held` is (commits through
    `Store.commit`'s `lease`, quarantine entries through `fenced`): the projector's own
    consumer, fenced on the rebuild's lease."""

    def __init__(self, redis: Redis, ttl_ms: int, notes_ttl_ms: int, held: Held) -> None:
        super().__init__(redis, ttl_ms, notes_ttl_ms)
        self.held = held

    async def commit(
        self,
        fence: Mapping[TP, tuple[int | None, int]],
        writes: Sequence[Write],
        replays: Mapping[TP, int] | None = None,
        marked: Iterable[TP] = (),
        *,
        lease: tuple[str, str] | None = None,
    ) -> dict[TP, int | None] | None:
        try:
            return await super().commit(fence, writes, replays, marked, lease=lease or self.held)
        except LeaseNotHeld as exc:
            raise LeaseLost(exc.key) from None

    async def quarantine(self, entries: Mapping[str, str]) -> None:
        pairs = [part for field, value in entries.items() for part in (field, value)]
        await fenced(self.redis, self.held, "HSET", QUARANTINE_KEY, *pairs)


def _store(src: Sources, options: ProjectorSettings, held: Held | None = None) -> Store:
    assert src.redis is not None
    ttls = (options.ttl_s * 1000, options.notes_ttl_s * 1000)
    return Store(src.redis, *ttls) if held is None else LeasedStore(src.redis, *ttls, held)


# The run's writes besides its commits, fenced on its lease when it holds one.
async def _delete(redis: Redis, held: Held | None, *keys: str | bytes) -> int:
    if held is None:
        return int(await redis.delete(*keys))
    return int(await fenced(redis, held, "DEL", *keys))


async def _mark(redis: Redis, held: Held | None, value: bytes) -> None:
    if held is None:
        await redis.set(RESET_MARKER, value)
    else:
        await fenced(redis, held, "SET", RESET_MARKER, value)


async def wipe(redis: Redis, held: Held | None = None) -> int:
    """Delete every projector-owned key; returns how many. With `held`, each batch only while
    the lease is held (else `LeaseLost`, the batches before it deleted)."""
    deleted = 0
    for pattern in OWNED:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await _delete(redis, held, *batch)
                batch = []
        if batch:
            deleted += await _delete(redis, held, *batch)
    return deleted


async def reset(redis: Redis, held: Held | None = None) -> bool:
    """Wipe unless a previous reset already did (then only its rebuild is unfinished). With
    `held`: writes only while the lease is held (else `LeaseLost`)."""
    marker = await redis.get(RESET_MARKER)
    if marker == b"rebuilding":
        return False
    await _mark(redis, held, b"wiping")
    await wipe(redis, held)
    await _mark(redis, held, b"rebuilding")
    return True


async def run_all(
    src: Sources,
    meter: Meter,
    options: ProjectorSettings | None = None,
    workers: int = 1,
    held: Held | None = None,
) -> int:
    """Fold every partition of both topics up to its current end; returns events folded.

    `workers` > 1 folds groups of partitions in that many processes (one core each; a letter's
    letters and presence partitions always go together, as the projector's group assigns
    them). Progress and completion are read from the positions in Redis either way. `held`:
    the run's lease, on which every write is fenced (`LeaseLost` once it is not held)."""
    assert src.redis is not None
    options = options or ProjectorSettings(metrics_port=None)
    store = _store(src, options, held)
    ends = await _ends(src)
    firsts = await _firsts(src, ends)
    begin = await _positions(store, ends, firsts)
    # The count moves when a batch's positions are stored: say so while one is read and folded.
    between = (
        f"counted as each batch of up to {options.batch_records:,} records is stored: the next"
        " is being read from the log and folded"
    )
    meter.start("projector", sum(max(ends[tp] - begin[tp], 0) for tp in ends), between=between)

    async def done() -> bool:
        now = await _positions(store, ends, firsts)
        meter.advance_to(sum(max(now[tp] - begin[tp], 0) for tp in ends))
        return all(now[tp] >= ends[tp] for tp in ends)

    numbers = sorted({p for _, p in ends})
    groups = [numbers[i::workers] for i in range(max(1, min(workers, len(numbers))))]
    try:
        if len(groups) > 1:
            await _in_processes(src.settings, options, ends, groups, done, held)
        else:
            await _fold(src, store, options, ends, done)
    finally:
        meter.finish()
    await _delete(src.redis, held, RESET_MARKER)
    return meter.done


async def _ends(src: Sources) -> dict[TP, int]:
    topics = [src.settings.topic(Topic.LETTERS), src.settings.topic(Topic.PRESENCE)]
    return {(t, p): e for t in topics for p, e in (await src.log.end_offsets(t)).items()}


async def _firsts(src: Sources, ends: dict[TP, int]) -> dict[TP, int]:
    topics = sorted({t for t, _ in ends})
    return {(t, p): o for t in topics for p, o in (await src.log.start_offsets(t)).items()}


def backfilling(src: Sources, store: Store, options: ProjectorSettings) -> Projector:
    """The projector's own consumer as a backfill runs it: a running service folds the same
    partitions and moves their positions past the backfill's (each goes on from the other's),
    which is expected here, so logged at INFO (hidden in the command's output), not WARNING."""
    projector = Projector(src.settings, options, src.log, store, Versions(None), Metrics())
    projector.moved_level = logging.INFO
    return projector


async def _fold(
    src: Sources,
    store: Store,
    options: ProjectorSettings,
    ends: dict[TP, int],
    done: Callable[[], Awaitable[bool]],
) -> None:
    """The projector's own consumer over the partitions of `ends`, until `done()`."""
    projector = backfilling(src, store, options)
    topics = sorted({t for t, _ in ends})
    partitions = {t: frozenset(p for (tt, p) in ends if tt == t) for t in topics}
    await projector.assigned(partitions)
    worker = asyncio.create_task(projector.work())
    try:
        while not await done():
            if worker.done():
                worker.result()  # a bug in the fold: raise it
            await asyncio.sleep(POLL_S)
    finally:
        # `revoked` waits for the batch in flight and for the followers to end (a Kafka
        # follower closes its consumer before the log closes). Only then is the worker stopped,
        # idle: a cancel inside a Redis call would break the connection.
        await projector.revoked(partitions)
        await _stop(worker)


async def _in_processes(
    settings: Settings,
    options: ProjectorSettings,
    ends: dict[TP, int],
    groups: list[list[int]],
    done: Callable[[], Awaitable[bool]],
    held: Held | None,
) -> None:
    procs = []
    try:
        for group in groups:
            mine = {tp: end for tp, end in ends.items() if tp[1] in group}
            payload = (settings, options, mine, os.getpid(), held)
            procs.append(_Worker(f"backfill-{group}", payload))
        while not await done():
            failed = [proc for proc in procs if proc.exitcode not in (None, 0)]
            if held is not None and any(p.exitcode == LEASE_LOST_EXIT for p in failed):
                raise LeaseLost(held.key)
            if failed or (all(proc.exitcode == 0 for proc in procs) and not await done()):
                codes = ", ".join(f"{proc.name}: {proc.exitcode}" for proc in procs)
                raise BackfillError(f"a projector backfill worker failed ({codes}); run again")
            await asyncio.sleep(POLL_S)
    finally:
        for proc in procs:
            if proc.exitcode is None:
                proc.popen.terminate()  # Ctrl-C or a failed sibling: what they stored stays valid
        for proc in procs:
            await asyncio.to_thread(proc.join, 10)


# A worker's program: SIGINT ignored before anything is imported, then `_worker_from_stdin`
# (on the parent's sys.path, given as arguments).
_PROGRAM = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); sys.path[:0] = sys.argv[1:]"
    "; from tools.backfill_projector import _worker_from_stdin; _worker_from_stdin()"
)


class _Worker:
    """A worker process that ignores SIGINT: a terminal's Ctrl-C reaches the whole foreground
    group, and each worker dying of it, a KeyboardInterrupt traceback each (or at its imports),
    hid the parent's "interrupted" line. The parent stops them (they store nothing half done).
    Its arguments are pickled to its stdin, as multiprocessing's spawn does (which cannot start
    it with SIGINT ignored)."""

    def __init__(self, name: str, payload: tuple[object, ...]) -> None:
        self.name = name
        # In the parent's process group, so that Ctrl-Z stops them with it (a group of their
        # own ran on while the job was stopped); SIGINT is ignored from before Python starts
        # (`sh` sets it, `exec` keeps it, Python keeps an inherited SIG_IGN): no traceback.
        self.popen = subprocess.Popen(
            ["sh", "-c", 'trap "" INT; exec "$0" "$@"', sys.executable, "-c", _PROGRAM, *sys.path],
            stdin=subprocess.PIPE,
        )
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError), self.popen.stdin:  # died: its exit code says
            self.popen.stdin.write(pickle.dumps(payload))

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def join(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def _worker_from_stdin() -> None:
    settings, options, ends, parent, held = pickle.load(sys.stdin.buffer)
    try:
        _worker(settings, options, ends, parent, held)
    except LeaseLost:  # the parent says so (no traceback per worker)
        sys.exit(LEASE_LOST_EXIT)


class BackfillError(RuntimeError):
    """The backfill stopped before its end (a worker process failed, or the run lost its lease:
    tools/backfill.py); the positions stored are still valid: run again."""


def _worker(
    settings: Settings,
    options: ProjectorSettings,
    ends: dict[TP, int],
    parent: int,
    held: Held | None = None,
) -> None:
    """A worker process: fold its partitions up to `ends` (positions stored as it goes)."""
    exit_with_parent(parent)
    uvloop.run(_worker_main(settings, options, ends, held))


async def _worker_main(
    settings: Settings, options: ProjectorSettings, ends: dict[TP, int], held: Held | None = None
) -> None:
    log = open_log(settings, readonly=True)
    await log.start()
    redis = Redis.from_url(settings.redis_url or "")
    try:
        src = Sources(settings, log, redis)
        store = _store(src, options, held)
        firsts = await _firsts(src, ends)

        async def done() -> bool:
            now = await _positions(store, ends, firsts)
            return all(now[tp] >= ends[tp] for tp in ends)

        await _fold(src, store, options, ends, done)
    finally:
        await redis.aclose()
        await log.close()


async def _stop(worker: "asyncio.Task[None]") -> None:
    # A cancel landing inside a Redis call can come back as a RedisError, which
    # `Projector.work` retries after a pause: cancel again until the task has ended.
    while not worker.done():
        worker.cancel()
        await asyncio.wait([worker], timeout=0.2)
    if not worker.cancelled() and worker.exception() is not None:
        raise worker.exception()  # type: ignore[misc]


async def _positions(store: Store, ends: dict[TP, int], firsts: dict[TP, int]) -> dict[TP, int]:
    stored = await store.positions(list(ends))
    return {tp: firsts.get(tp, 0) if v is None else v for tp, v in stored.items()}


async def run_letters(src: Sources, letters: Iterable[str], meter: Meter, reset_first: bool) -> int:
    """Rebuild chosen letters from the log alone; returns how many letters were written."""
    assert src.redis is not None
    store = _store(src, ProjectorSettings(metrics_port=None))
    letters_topic, presence = src.letters_topic, src.settings.topic(Topic.PRESENCE)
    by_partition: dict[int, list[str]] = {}
    for lid in sorted(set(letters)):
        by_partition.setdefault(src.partition_of(lid), []).append(lid)
    meter.start("projector letters", sum(len(v) for v in by_partition.values()), unit="letters")
    written = 0
    for partition, lids in sorted(by_partition.items()):
        tps = [(letters_topic, partition), (presence, partition)]
        stored = await store.positions(tps)
        # What the letters' last writes notified: users' hashes outlive a letter's keys, so the
        # notes a wrong stored state wrote would stay there unless named (read before a reset).
        old = await store.load(lids)
        notified = {lid: frozenset(note_views(s)) for lid, s in old.items() if s is not None}
        if reset_first:
            await _forget(src.redis, lids)
        upto = stored[tps[0]]
        if upto is None:  # never projected: the projector will fold this partition from its start
            upto = (await src.log.end_offsets(letters_topic)).get(partition, 0)
        states = await reload_letters(
            src.log, Versions(None), letters_topic, partition, lids, upto, src.settings.doc_field
        )
        fence = {tp: (v, v) for tp, v in stored.items() if v is not None}
        writes = [
            Write(None, state, partition, notified.get(lid, frozenset()))
            for lid, state in states.items()
        ]
        if await store.commit(fence, writes) is not None:
            raise RuntimeError(f"projector positions of partition {partition} moved: rerun")
        written += len(writes)
        meter.advance_to(written)
    meter.finish()
    return written


async def _forget(redis: Redis, letter_ids: list[str]) -> None:
    for lid in letter_ids:
        conns = await redis.smembers(connections_key(lid))
        keys = [ydoc_key(lid), ydoc_offset_key(lid), meta_key(lid), letter_key(lid)]
        keys += [connections_key(lid), presence_key(lid), comments_key(lid), recent_key(lid)]
        keys += [connection_key(_text(c)) for c in conns]
        await redis.delete(*keys)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
