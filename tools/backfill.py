"""Backfill: rebuild the projector's and/or the snapshotter's projections from the log, and
restore the section locks it says are held (tools/backfill_locks.py; `all` does that first, as
the locks' TTLs run meanwhile).

Whole projections (default) run each consumer's own code from its stored positions, after an
optional reset into fresh state. `letters` (or `since_ms`, which picks the letters with records
at or after that instant) rebuilds only those letters from their full history; ids the log
does not hold are refused before anything is written. Every mode is idempotent and resumable:
positions are stored with the state they produced; a whole `all --reset` marks its projector
phase done (ALL_RESET), so that its rerun does not reset Redis again.
"""

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from projector.settings import ProjectorSettings
from schemas.rebuilds import MARKER_GROUP, PROJECTOR_RUN, SNAPSHOTTER_LOCK
from tools import backfill_locks as locks
from tools import backfill_projector as projector
from tools import backfill_snapshotter as snapshotter
from tools.lease import RELEASE, Held, LeaseLost, lease
from tools.progress import Meter
from tools.replay import exists
from tools.sources import Sources, alive

TARGETS = ("projector", "snapshotter", "locks", "all")


class UnknownLetters(LookupError):
    """Letter ids given to a backfill that the log holds no record of."""

    def __init__(self, letter_ids: list[str]) -> None:
        self.letter_ids = letter_ids
        names = ", ".join(repr(lid) for lid in letter_ids)
        super().__init__(f"no letter {names} in the log: nothing was written")


# One whole-log rebuild of a projection at a time: two at once (two operators' `backfill all
# --reset`) each folded the log, the second one's commits refused as stale, and its output
# ("after a reset", "0 events", records "skipped (duplicate)") did not say so. A second run
# says it waits for the first, then runs. The projector's is a lease in Redis (not under a
# wipe's patterns: schemas.rebuilds.PROJECTOR_RUN), the snapshotter's a PostgreSQL session
# advisory lock (gone with its connection: a killed run leaves nothing behind).
RUN_LEASE_S = 30.0  # a killed (or paused: Ctrl-Z) run's lease lapses after this
WAIT_S = 1.0

# Wall time outside the rebuilds worth a line of its own: opening and closing the log and the
# stores once took 24 s of a 54 s command against a slow broker, and the summary said 29.7 s.
OVERHEAD_S = 1.0


@dataclass
class Summary:
    """The lines `backfill` prints when done. Read after the command closed its log and stores
    (steno_collab/commands/backfill.py), `lines` ends with the wall time since `started` (the
    command's start, else the backfill's) when it exceeds the rebuilds' own (and their waits
    for other runs) by `OVERHEAD_S`, or when a target waited."""

    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    targets: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the targets' own time
    waited: float = 0.0  # the targets' waits for another backfill run, not in `seconds`

    @property
    def lines(self) -> list[str]:
        wall = self.clock() - self.started
        rest = wall - self.seconds - self.waited
        if rest < OVERHEAD_S and not self.waited:
            return list(self.targets)
        parts = (
            [f"{self.waited:.1f} s of it waiting for another backfill run"] if self.waited else []
        )
        if rest >= OVERHEAD_S:
            of_it = " " if parts else " of it "
            parts.append(f"{rest:.1f} s{of_it}outside the rebuilds: opening and closing the log"
                         " and stores, checks")  # fmt: skip
        return [*self.targets, f"in all: {wall:.1f} s wall time ({', '.join(parts)})"]

    def add(
        self,
        target: str,
        count: int,
        unit: str,
        seconds: float,
        note: str = "",
        waited: float = 0.0,
    ) -> None:
        """`waited`: seconds the target waited for another run before its `seconds` began."""
        rate = f", {count / seconds:,.0f} {unit}/s" if seconds > 0 and count else ""
        if waited:  # the time and rate are its own work's: the wait said apart
            note += f" (after waiting {waited:.1f} s for another backfill run: not in this time)"
        noun = unit.removesuffix("s") if count == 1 else unit  # "1 letter", "1 event"
        self.targets.append(f"{target}: {count:,} {noun} in {seconds:.1f} s{rate}{note}")
        self.seconds += seconds
        self.waited += waited


async def backfill(
    src: Sources,
    target: str,
    *,
    reset: bool = False,
    letters: Sequence[str] = (),
    since_ms: int | None = None,
    meter: Meter | None = None,
    projector_options: ProjectorSettings | None = None,
    workers: int = 1,
    started: float | None = None,
) -> Summary:
    """`started`: when the command began (`time.monotonic()`), for the summary's wall time."""
    summary = Summary(started=time.monotonic() if started is None else started)
    meter = meter or Meter()
    chosen = list(letters)
    await check_letters(src, chosen)
    if since_ms is not None:
        chosen += await active_since(src, since_ms)
        if not chosen:
            summary.targets.append("no letter has records at or after that instant: nothing to do")
            return summary
    some = chosen if since_ms is not None or letters else None
    whole_reset = target == "all" and reset and some is None
    if whole_reset:  # its progress marker's table (a table missing: said before any wipe)
        await snapshotter.prepare(src)
    locks_line = ""
    if target in ("locks", "all"):  # first: their TTLs run out while the projections rebuild
        began = time.monotonic()
        counts = await locks.rebuild(src, some, meter)
        took = time.monotonic() - began
        summary.seconds += took
        locks_line = counts.line(took)
    if target in ("projector", "all"):
        await _projector(src, reset, some, meter, summary, projector_options, workers, whole_reset)
    if target in ("snapshotter", "all"):
        await _snapshotter(src, reset, some, meter, summary)
    if locks_line:
        summary.targets.append(locks_line)
    return summary


async def check_letters(src: Sources, letters: Sequence[str]) -> None:
    """Raise `UnknownLetters` naming the ids without a record in the log: a rebuild of one
    would write an empty letter's keys (projector) or rows (snapshotter)."""
    log_only = Sources(src.settings, src.log)  # a row in PostgreSQL is no letter to rebuild
    unknown = [lid for lid in dict.fromkeys(letters) if not await exists(log_only, lid)]
    if unknown:
        raise UnknownLetters(unknown)


async def _projector(
    src: Sources,
    reset: bool,
    chosen: list[str] | None,
    meter: Meter,
    summary: Summary,
    options: ProjectorSettings | None,
    workers: int,
    whole_reset: bool = False,
) -> None:
    """`whole_reset`: a phase of `all --reset` (whole), which marks itself done (ALL_RESET)."""
    assert src.redis is not None
    started = time.monotonic()
    if chosen is not None:
        count = await projector.run_letters(src, chosen, meter, reset)
        summary.add("projector", count, "letters", time.monotonic() - started)
        return
    async with _projector_alone(src, meter) as (waited, held):
        note = _waited(waited)
        # The projector's marker gone: its reset (and rebuild) finished, a wipe now would be a
        # second one. There: the reset resumes as its own rerun would.
        again = whole_reset and await _all_reset_marked(src.pg)
        if again and await src.redis.get(projector.RESET_MARKER) is None:
            note += ALL_RESUMED
        elif reset:
            done = await projector.reset(src.redis, held)
            note += " (after a reset)" if done else " (reset resumed)"
        count = await projector.run_all(src, meter, options, workers, held)
        if whole_reset:
            await _mark_all_reset(src.pg)
    summary.add("projector", count, "events", time.monotonic() - started, note)


# A whole `backfill all --reset` past its projector phase: a marker row (the tools' group, as
# the snapshotter's reset marker) written once its projector phase has finished, deleted when
# a whole snapshotter backfill finishes (that `all`'s last phase, or one run on its own after
# it). The rerun of an `all --reset` interrupted in its snapshotter phase does not wipe Redis
# again (the projector's own marker was gone by then, so its reset could not tell);
# readers of the tools' group name only their own rows (schemas/rebuilds.py, tools/verify.py).
ALL_RESET = ("backfill-all-reset", 0)
# Also what a second `all --reset` started beside the first says once that one's projector
# phase is done: rebuilt just now, it goes on from there.
ALL_RESUMED = (
    " (not reset again: an earlier `backfill all --reset`, its snapshotter phase not finished"
    " (interrupted?), did and rebuilt it; continued from its positions)"
)


async def _all_reset_marked(pg: asyncpg.Pool) -> bool:
    try:
        found = await pg.fetchval(
            "SELECT 1 FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
            " AND partition = $3",
            MARKER_GROUP,
            *ALL_RESET,
        )
    except asyncpg.UndefinedTableError:  # a database not migrated yet: nothing marked
        return False
    return found is not None


async def _mark_all_reset(pg: asyncpg.Pool) -> None:
    await pg.execute(
        "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
        " VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
        MARKER_GROUP,
        *ALL_RESET,
    )


async def _unmark_all_reset(pg: asyncpg.Pool) -> None:
    await pg.execute(
        "DELETE FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3",
        MARKER_GROUP,
        *ALL_RESET,
    )


async def _snapshotter(
    src: Sources, reset: bool, chosen: list[str] | None, meter: Meter, summary: Summary
) -> None:
    # Timed from when its turn came: a run that waited for another said its wait in its time
    # and rate ("N events in 14.1 s" of which 12.3 s waiting), and letters runs not at all.
    async with _snapshotter_alone(src, meter) as (waited, turn):
        started, note = time.monotonic(), ""
        if chosen is not None:
            count, waiting = await snapshotter.run_letters(src, chosen, meter, turn)
            if waiting:
                note = (
                    f" (not rebuilt: {', '.join(waiting)}; the snapshotter has no stored"
                    " position on their partitions yet, so it folds them from the log's start,"
                    " these letters included, when it runs: start it, or run `backfill"
                    " snapshotter`)"
                )
        else:
            if reset:
                await snapshotter.prepare(src)
                done = await snapshotter.reset(src.pg)
                note += " (after a reset)" if done else " (reset resumed)"
            # Only a marker there when its turn came is this run's to clear: one an `all --reset`
            # wrote while this run held the lock waits for that run's own snapshotter phase.
            marked = await _all_reset_marked(src.pg)
            count = await snapshotter.run_all(src, meter, turn)
            if marked:  # an `all --reset`'s last phase, done (or a run after it finished it)
                await _unmark_all_reset(src.pg)
        took = time.monotonic() - started
    summary.add("snapshotter", count, "events", took, note, waited=waited)


WAITING = (
    "{}: another backfill ({}) is rebuilding it: waiting for that run to end, then this one runs"
)


# A run that lost its lease (paused, Ctrl-Z, or stalled past RUN_LEASE_S) would fold beside the
# run that took it: it stops, as an interrupted run does (what it stored stays valid). Its
# writes are fenced on the lease (tools/backfill_projector.py): none lands once it is lost.
LOST = (
    "projector: this run lost its lease ({}), so it stopped rather than rebuild beside another"
    " run; what it stored is valid: run the same command again to continue"
)


@contextlib.asynccontextmanager
async def _projector_alone(src: Sources, meter: Meter) -> AsyncIterator[tuple[float, Held]]:
    """Held while this run rebuilds the projector's keys; yields how long it waited and the
    lease, to fence the run's writes on. The lease names its holder (host, pid, machine): one
    of this machine that is gone (killed) is not waited for. Raises `BackfillError` (LOST) once
    the lease is found lost (by a renewal or a fenced write), the run stopped."""
    assert src.redis is not None
    began, said = time.monotonic(), False
    token = f"{socket.gethostname()} {os.getpid()} {_machine()} {secrets.token_hex(8)}"

    async def busy() -> bool:
        nonlocal said
        holder = await _holder(src)
        if holder is None:
            return True  # gone meanwhile, or dead: try again at once
        if not said:
            print(WAITING.format("projector", holder), file=meter.out, flush=True)
            said = True
        return False

    try:
        async with lease(
            src.redis, PROJECTOR_RUN, RUN_LEASE_S, wait_s=WAIT_S, token=token, busy=busy, stop=True
        ):
            yield time.monotonic() - began if said else 0.0, Held(PROJECTOR_RUN, token)
    except LeaseLost:
        why = f"it lapsed: paused or stalled past {RUN_LEASE_S:.0f} s, or Redis was wiped"
        if now := _named(await src.redis.get(PROJECTOR_RUN)):
            why = f"another backfill, pid {now[1]} on {now[0]}, took it over"
        raise projector.BackfillError(LOST.format(why)) from None


async def _holder(src: Sources) -> str | None:
    """Who holds the projector's lease ("pid N on host"), None when nobody; a dead process's
    lease is deleted when its pid is this machine's (unless it changed hands)."""
    assert src.redis is not None
    value = await src.redis.get(PROJECTOR_RUN)
    named = _named(value)
    if named is None:
        return None
    host, pid, machine, token = named
    here = _machine()
    if here and machine == here and pid.isdigit() and not alive(int(pid)):
        await src.redis.eval(RELEASE, 1, PROJECTOR_RUN, token)
        return None
    return f"pid {pid} on {host}"


def _named(value: bytes | str | None) -> tuple[str, str, str, str] | None:
    """A lease's (host, pid, machine, token) from its token "host pid machine ..."."""
    if value is None:
        return None
    token = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    host, pid, machine = [*token.split(" "), "", "", ""][:3]
    return host, pid, machine, token


def _machine() -> str:
    """This kernel's boot and pid namespace: where a pid means the same process (a hostname
    alone does not: containers on the host's network share it). Empty if unknown: then no
    lease is taken for dead, it lapses."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as boot:
            return f"{boot.read().strip()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


@contextlib.asynccontextmanager
async def _snapshotter_alone(
    src: Sources, meter: Meter
) -> AsyncIterator[tuple[float, asyncpg.Connection]]:
    """Held while this run rebuilds the snapshotter's tables, of letters or whole; yields how
    long it waited and the connection holding the lock (the run's jobs' locks go on it)."""
    began, said = time.monotonic(), False
    async with src.pg.acquire() as conn:  # its release unlocks too (asyncpg's reset)
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SNAPSHOTTER_LOCK):
            if not said:
                print(
                    WAITING.format("snapshotter", "holding its PostgreSQL lock"),
                    file=meter.out,
                    flush=True,
                )
                said = True
            await asyncio.sleep(WAIT_S)
        try:
            yield time.monotonic() - began if said else 0.0, conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", SNAPSHOTTER_LOCK)


def _waited(seconds: float) -> str:
    return f" (after waiting {seconds:.1f} s for another backfill's run to end)" if seconds else ""


async def active_since(src: Sources, since_ms: int) -> list[str]:
    """Letters with a record stamped at or after `since_ms` (binary search, then a scan)."""
    topic, found = src.letters_topic, set()
    starts = await src.log.start_offsets(topic)
    for partition, end in (await src.log.end_offsets(topic)).items():
        offset = await _first_at(src, partition, starts.get(partition, 0), end, since_ms)
        while offset < end:
            records = await src.log.read(topic, partition, offset, 1000)
            if not records:
                break
            found |= {r.key.decode(errors="replace") for r in records if r.timestamp >= since_ms}
            offset = records[-1].offset + 1
    return sorted(found)


async def _first_at(src: Sources, partition: int, lo: int, hi: int, since_ms: int) -> int:
    """The first offset stamped at or after `since_ms`; the log's clock only moves forward
    per partition (a record stamped earlier after it would be missed: letters are a superset
    anyway when in doubt, so we step back a margin)."""
    margin_lo = lo
    while lo < hi:
        mid = (lo + hi) // 2
        records = await src.log.read(src.letters_topic, partition, mid, 1)
        if not records:
            hi = mid
        elif records[0].timestamp < since_ms:
            lo = records[0].offset + 1
        else:
            hi = mid
    return max(margin_lo, lo - 1000)
