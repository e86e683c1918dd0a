"""Two whole rebuilds of a projection at once (two operators' `backfill all --reset`): the
second says it waits for the first, then runs, rather than folding the log beside it (its
commits refused as stale) and reporting "0 events (after a reset)" with records "skipped
(duplicate)" as warnings, which read like a corrupt log."""

import asyncio
import io
import logging
import socket
import sys

import pytest

from eventlog import Log
from schemas.rebuilds import PROJECTOR_RUN
from schemas.settings import Settings
from snapshotter.fold import Folder
from tests.snapshotter.folding import Log as Numbered
from tests.snapshotter.scripts import LetterScript
from tests.tools.backfill_logs import fill
from tools.backfill import _machine, backfill
from tools.progress import Meter
from tools.sources import open_sources


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def test_a_second_rebuild_waits_for_the_first_and_says_so(
    settings: Settings, log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    await fill(log, settings, steps=30)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))  # something to reset
        for target in ("projector", "snapshotter"):
            outs = [io.StringIO(), io.StringIO()]
            with caplog.at_level(logging.WARNING, logger="snapshotter.fold"):
                runs = [
                    backfill(src, target, reset=True, meter=Meter(out=out, every_s=3600))
                    for out in outs
                ]
                lines = [summary.lines[0] for summary in await asyncio.gather(*runs)]
            # Each run reset and rebuilt the whole log, one after the other.
            assert len({line.split(" in ")[0] for line in lines}) == 1, lines
            assert " 0 events" not in lines[0], lines
            assert all("(after a reset)" in line for line in lines), lines
            assert len([line for line in lines if "(after waiting " in line]) == 1, lines
            said = [
                out.getvalue() for out in outs if f"{target}: another backfill (" in out.getvalue()
            ]
            assert len(said) == 1 and "is rebuilding it: waiting for that run to end" in said[0]
    assert not caplog.records, [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("where", ["this-machine", "same-hostname-elsewhere"])
async def test_a_killed_run_is_not_waited_for(settings: Settings, log: Log, where: str) -> None:
    """Its lease names it (host, pid, machine): a rerun on the machine it died on takes the
    lease at once rather than waiting for it to lapse. A hostname alone is no machine
    (containers on the host's network share it): a pid there may be alive, so that run waits."""
    await fill(log, settings, steps=5)
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "")
    await dead.wait()
    machine = _machine() if where == "this-machine" else "another-boot/1"
    async with open_sources(settings, redis=True, pg=True) as src:
        assert src.redis is not None
        token = f"{socket.gethostname()} {dead.pid} {machine} t"
        await src.redis.set(PROJECTOR_RUN, token, px=60_000 if where == "this-machine" else 1_500)
        out = io.StringIO()
        [line] = (await backfill(src, "projector", meter=Meter(out=out, every_s=3600))).lines
    waited = "waiting" in out.getvalue() and "after waiting" in line
    assert waited is (where != "this-machine"), (out.getvalue(), line)


def test_a_refold_of_a_known_letter_created_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rebuild beside another writer loads that writer's saved state, past the records it
    folds again: a `letter.created` the state holds is skipped at INFO; a second one after
    it is bad input, a WARNING as before."""
    script, log = LetterScript("L-known"), Numbered()
    records = log.records([script.created("alice"), script.paragraph("alice", "Dear Sir")])
    folder = Folder(Settings())
    folder.fold(records)
    with caplog.at_level(logging.INFO, logger="snapshotter.fold"):
        folder.fold(records[:1])  # its state covers it
        folder.fold(log.records([script.created("alice")]))  # a new record: a second creation
    found = [(r.levelno, r.getMessage().split(" (duplicate): ")) for r in caplog.records]
    assert found == [
        (logging.INFO, ["skipped record steno.letters/0@0", "letter.created folded already"]),
        (logging.WARNING, ["skipped record steno.letters/0@2", CREATED_AGAIN]),
    ]


CREATED_AGAIN = "letter.created for an existing letter"
