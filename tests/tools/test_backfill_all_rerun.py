"""`backfill all --reset` interrupted in its snapshotter phase, then run again: the rerun
continues (README "Rebuilding and auditing"). The projector's reset had finished (its marker
gone), so it could not tell; `all` marks its own progress: Redis is not wiped again (the
comments and notifications it serves would answer 503 for a whole projector rebuild more).
A whole snapshotter backfill run on its own finishes that `all` as well: the next
`all --reset` resets everything again."""

import asyncio
import io
from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio

from eventlog import Log
from schemas.rebuilds import MARKER_GROUP, PROJECTOR_RESET, SNAPSHOTTER_RESET
from schemas.settings import Settings
from tests.support import eventually
from tests.tools.backfill_logs import all_agree, fill
from tests.tools.letters_jobs import SteppedLog
from tools.backfill import ALL_RESET, ALL_RESUMED, backfill
from tools.progress import Meter
from tools.sources import Sources, open_sources
from tools.verify import unfinished

# A key under the projector's wipe patterns that no rebuild writes: gone once Redis is wiped.
SENTINEL = "projector:test-sentinel"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


@pytest_asyncio.fixture(loop_scope="session")
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(snapshotter_batch=10)  # several batches: stopped in the middle


class HeldInSnapshotter:
    """The log, whose reads stop for good (until cancelled: the Ctrl-C) once `meter` counts
    the snapshotter's fold past its first batch: its reset done, part of the log folded."""

    def __init__(self, log: Log, meter: Meter) -> None:
        self._log, self._meter = log, meter
        self.reached = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._log, name)
        if name != "read":
            return real

        async def read(*args: Any, **kw: Any) -> Any:
            if self._meter.name == "snapshotter" and self._meter.done > 0:
                self.reached.set()
                await asyncio.Event().wait()
            return await real(*args, **kw)

        return read


async def marked(src: Sources, topic: str) -> bool:
    found = await src.pg.fetchval(
        "SELECT 1 FROM consumer_positions WHERE consumer_group = $1 AND topic = $2",
        MARKER_GROUP,
        topic,
    )
    return found is not None


async def interrupted_in_snapshotter_phase(src: Sources, settings: Settings) -> None:
    """`all --reset` run until its snapshotter phase has folded a batch, then cancelled (what
    Ctrl-C does to the command's task); then the sentinel written."""
    assert src.redis is not None
    meter = Meter(out=io.StringIO(), every_s=3600)
    held = HeldInSnapshotter(src.log, meter)
    stepped = Sources(settings, held, src.redis, src.pg)
    run = asyncio.create_task(backfill(stepped, "all", reset=True, meter=meter, workers=1))
    try:
        await asyncio.wait_for(held.reached.wait(), 60)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert run.cancelled()
    assert await src.redis.get(PROJECTOR_RESET) is None  # the projector's phase had finished
    assert await marked(src, SNAPSHOTTER_RESET[0]) and await marked(src, ALL_RESET[0])
    await src.redis.set(SENTINEL, "here")


async def test_a_rerun_after_the_snapshotter_phase_was_interrupted_does_not_wipe_redis(
    settings: Settings, log: Log
) -> None:
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None
        await interrupted_in_snapshotter_phase(src, settings)
        out = io.StringIO()
        summary = await backfill(src, "all", reset=True, meter=Meter(out=out, every_s=3600))
        lines = summary.lines
        assert await src.redis.get(SENTINEL) == b"here", lines  # Redis was not wiped again
        projector = next(line for line in lines if line.startswith("projector:"))
        assert projector.endswith(ALL_RESUMED) and "after a reset" not in projector, lines
        snapshotter = next(line for line in lines if line.startswith("snapshotter:"))
        assert snapshotter.endswith("(reset resumed)"), lines
        # The result is whole: every letter agrees, nothing is left unfinished or marked.
        await all_agree(src)
        assert await unfinished(src) == []
        assert not await marked(src, ALL_RESET[0]) and not await marked(src, SNAPSHOTTER_RESET[0])


async def test_a_whole_snapshotter_run_finishes_it_and_the_next_all_reset_resets_again(
    settings: Settings, log: Log
) -> None:
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None
        await interrupted_in_snapshotter_phase(src, settings)
        summary = await backfill(src, "snapshotter", meter=Meter(io.StringIO(), every_s=3600))
        assert summary.lines[0].startswith("snapshotter:"), summary.lines
        assert not await marked(src, ALL_RESET[0])  # that `all` is done
        summary = await backfill(src, "all", reset=True, meter=Meter(io.StringIO(), every_s=3600))
        projector = next(line for line in summary.lines if line.startswith("projector:"))
        assert projector.endswith("(after a reset)"), summary.lines
        assert await src.redis.get(SENTINEL) is None  # wiped: a fresh reset, as asked
        await all_agree(src)
        assert not await marked(src, ALL_RESET[0])


async def test_a_snapshotter_run_under_way_leaves_a_later_all_resets_marker(
    settings: Settings, log: Log
) -> None:
    # Found by a reviewer: a whole snapshotter run that held the lock when an `all --reset`
    # marked its projector phase done deleted that marker on finishing; the `all` then
    # interrupted in its own snapshotter phase, its rerun wiped Redis again.
    await fill(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None
        reading, go = asyncio.Event(), asyncio.Event()

        async def held() -> None:  # its first read waits for `go`: it holds the lock meanwhile
            reading.set()
            await go.wait()

        stepped_first = Sources(settings, SteppedLog(src.log, "read", held), src.redis, src.pg)
        first = asyncio.create_task(
            backfill(stepped_first, "snapshotter", meter=Meter(io.StringIO()))
        )
        await asyncio.wait_for(reading.wait(), 60)  # it holds the snapshotter's lock
        meter = Meter(out=io.StringIO(), every_s=3600)
        in_phase = HeldInSnapshotter(src.log, meter)
        stepped = Sources(settings, in_phase, src.redis, src.pg)
        run = asyncio.create_task(backfill(stepped, "all", reset=True, meter=meter, workers=1))
        try:
            await eventually(lambda: marked(src, ALL_RESET[0]), timeout=60)
            go.set()
            await asyncio.wait_for(first, 60)
            await asyncio.wait_for(in_phase.reached.wait(), 60)
        finally:
            go.set()
            run.cancel()
            await asyncio.gather(run, first, return_exceptions=True)
        assert await marked(src, ALL_RESET[0])  # still the interrupted `all`'s
        await src.redis.set(SENTINEL, "here")
        summary = await backfill(src, "all", reset=True, meter=Meter(io.StringIO(), every_s=3600))
        assert await src.redis.get(SENTINEL) == b"here", summary.lines
        await all_agree(src)
