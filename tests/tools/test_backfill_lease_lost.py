"""A whole rebuild of the projector that lost its lease (paused by Ctrl-Z or stalled past its
TTL, and another run took it over, or it lapsed) stops, as an interrupted run does, rather than
fold beside the run that holds it now: exit 1, a line saying why and to run again; the other
holder's lease stays as it is, and a reset's marker as an interrupted reset leaves it."""

import asyncio
import io
import os
import signal
from collections.abc import Callable

import pytest

from eventlog import Log
from schemas.rebuilds import PROJECTOR_RESET, PROJECTOR_RUN
from schemas.settings import Settings
from tests.support import eventually
from tests.tools.backfill_logs import fill
from tests.tools.leases import OTHER, TOOK_OVER
from tests.tools.processes import alive, backfill_run, process_state
from tools import backfill as backfills
from tools import backfill_projector as projector
from tools.backfill import backfill
from tools.backfill_projector import BackfillError
from tools.progress import Meter
from tools.sources import open_sources

SHORT_S = 0.3  # the lease's TTL here: renewed, and found lost, every 0.1 s


@pytest.fixture
def log_kind() -> str:
    return "embedded"


@pytest.mark.parametrize("lost", ["taken-over", "lapsed"])
async def test_a_run_that_finds_its_lease_lost_stops(
    settings: Settings, log: Log, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """The fold never ends by itself here: only the stop ends the run."""
    await fill(log, settings, steps=5)
    monkeypatch.setattr(backfills, "RUN_LEASE_S", SHORT_S)
    folding = asyncio.Event()

    async def endless(*args: object, **kwargs: object) -> int:
        folding.set()
        await asyncio.Event().wait()
        return 0

    monkeypatch.setattr(projector, "run_all", endless)
    async with open_sources(settings, redis=True) as src:
        assert src.redis is not None
        meter = Meter(out=io.StringIO(), every_s=3600)
        run = asyncio.create_task(backfill(src, "projector", reset=True, meter=meter))
        began = asyncio.create_task(folding.wait())
        await asyncio.wait([run, began], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert folding.is_set(), run
        if lost == "taken-over":
            assert await src.redis.set(PROJECTOR_RUN, OTHER, px=60_000, xx=True)
        else:
            assert await src.redis.delete(PROJECTOR_RUN)
        with pytest.raises(BackfillError) as stopped:
            await asyncio.wait_for(run, 30)
        if lost == "taken-over":
            assert str(stopped.value) == TOOK_OVER
            assert await src.redis.get(PROJECTOR_RUN) == OTHER.encode()
            assert await src.redis.pttl(PROJECTOR_RUN) > 50_000
        else:
            assert "this run lost its lease (it lapsed: paused or stalled past" in str(
                stopped.value
            )
            assert await src.redis.get(PROJECTOR_RUN) is None
        # What an interrupted reset leaves: the next run resumes the rebuild (no second wipe).
        assert await src.redis.get(PROJECTOR_RESET) == b"rebuilding"


# The command with its lease's TTL short, as `backfill_run` (processes.py) runs it:
# long enough that a loaded machine does not stall the run past it before the test stops it (at
# 0.3 s a run in CI beside other work ended before it was seen folding; the test takes the lease
# over itself, so nothing waits for this TTL).
SUBPROCESS_LEASE_S = 2.0
SHORT = f"""
import sys
from steno_collab.cli import main
from tools import backfill

backfill.RUN_LEASE_S = {SUBPROCESS_LEASE_S}
main(sys.argv[1:])
"""


async def test_resumed_after_ctrl_z_past_its_lease_it_stops(
    make_settings: Callable[..., Settings],
) -> None:
    """Stopped as Ctrl-Z stops it (its workers with it) while another run takes the lease over,
    then resumed: it stops its workers and exits 1 rather than fold on beside that run."""
    async with backfill_run(make_settings, SHORT) as run:
        proc = run.proc
        workers = await run.workers_when(folding=True)
        os.killpg(proc.pid, signal.SIGSTOP)  # Ctrl-Z's SIGTSTP, as test_backfill_interrupt.py
        await eventually(lambda: process_state(proc.pid) == "T", 10)
        async with open_sources(run.settings, redis=True) as src:
            assert src.redis is not None
            await src.redis.set(PROJECTOR_RUN, OTHER, px=60_000)  # lapsed, then taken
            os.killpg(proc.pid, signal.SIGCONT)
            code, out, err = await run.ended()
            assert code == 1, err
            assert err.strip().splitlines()[-1] == f"steno-collab backfill: {TOOK_OVER}", err
            assert "backfill done" not in out
            assert not any(alive(w) for w in workers)
            assert await src.redis.get(PROJECTOR_RUN) == OTHER.encode()
            assert await src.redis.get(PROJECTOR_RESET) == b"rebuilding"
