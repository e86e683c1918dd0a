"""Backfill: rebuild the projector's and/or the snapshotter's projections from the log, and
restore the section locks it says are held (tools/backfill_locks.py; `all` does that first, as
the locks' TTLs run meanwhile).

Whole projections (default) run each consumer's own code from its stored positions, after an
optional reset into fresh state. `letters` (or `since_ms`, which picks the letters with records
at or after that instant) rebuilds only those letters from their full history; ids the log
does not hold are refused before anything is written. Every mode is idempotent and resumable:
positions are stored with the state they produced.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from projector.settings import ProjectorSettings
from tools import backfill_locks as locks
from tools import backfill_projector as projector
from tools import backfill_snapshotter as snapshotter
from tools.progress import Meter
from tools.replay import exists
from tools.sources import Sources

TARGETS = ("projector", "snapshotter", "locks", "all")


class UnknownLetters(LookupError):
    """Letter ids given to a backfill that the log holds no record of."""

    def __init__(self, letter_ids: list[str]) -> None:
        self.letter_ids = letter_ids
        names = ", ".join(repr(lid) for lid in letter_ids)
        super().__init__(f"no letter {names} in the log: nothing was written")


# Wall time outside the rebuilds worth a line of its own: opening and closing the log and the
# stores once took 24 s of a 54 s command against a slow broker, and the summary said 29.7 s.
OVERHEAD_S = 1.0


@dataclass
class Summary:
    """The lines `backfill` prints when done. Read after the command closed its log and stores
    (steno_collab/commands/backfill.py), `lines` ends with the wall time since `started` (the
    command's start, else the backfill's) when it exceeds the rebuilds' own by `OVERHEAD_S`."""

    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    targets: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the targets' own time

    @property
    def lines(self) -> list[str]:
        wall = self.clock() - self.started
        if wall - self.seconds < OVERHEAD_S:
            return list(self.targets)
        rest = wall - self.seconds
        return [*self.targets, f"in all: {wall:.1f} s wall time ({rest:.1f} s of it outside the"
                " rebuilds: opening and closing the log and stores, checks)"]  # fmt: skip

    def add(self, target: str, count: int, unit: str, seconds: float, note: str = "") -> None:
        rate = f", {count / seconds:,.0f} {unit}/s" if seconds > 0 and count else ""
        self.targets.append(f"{target}: {count:,} {unit} in {seconds:.1f} s{rate}{note}")
        self.seconds += seconds


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
    locks_line = ""
    if target in ("locks", "all"):  # first: their TTLs run out while the projections rebuild
        began = time.monotonic()
        counts = await locks.rebuild(src, some, meter)
        took = time.monotonic() - began
        summary.seconds += took
        locks_line = counts.line(took)
    if target in ("projector", "all"):
        await _projector(src, reset, some, meter, summary, projector_options, workers)
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
) -> None:
    assert src.redis is not None
    started = time.monotonic()
    if chosen is not None:
        count = await projector.run_letters(src, chosen, meter, reset)
        summary.add("projector", count, "letters", time.monotonic() - started)
        return
    note = ""
    if reset:
        note = " (after a reset)" if await projector.reset(src.redis) else " (reset resumed)"
    count = await projector.run_all(src, meter, options, workers)
    summary.add("projector", count, "events", time.monotonic() - started, note)


async def _snapshotter(
    src: Sources, reset: bool, chosen: list[str] | None, meter: Meter, summary: Summary
) -> None:
    started = time.monotonic()
    if chosen is not None:
        count, waiting = await snapshotter.run_letters(src, chosen, meter)
        note = ""
        if waiting:
            note = (
                f" (not rebuilt: {', '.join(waiting)}; the snapshotter has no stored position"
                " on their partitions yet, so it folds them from the log's start, these letters"
                " included, when it runs: start it, or run `backfill snapshotter`)"
            )
        summary.add("snapshotter", count, "events", time.monotonic() - started, note)
        return
    note = ""
    if reset:
        await snapshotter.prepare(src)
        note = " (after a reset)" if await snapshotter.reset(src.pg) else " (reset resumed)"
    count = await snapshotter.run_all(src, meter)
    summary.add("snapshotter", count, "events", time.monotonic() - started, note)


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
