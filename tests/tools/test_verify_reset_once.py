"""`verify` during an interrupted snapshotter reset says so once: the reset's line ("run the same
... command again"), not also a "folded nothing of <partition> yet (a database made again?)"
line per partition, which the reset's emptied positions caused (a reader took them for three
more problems); an `all --reset`'s own progress marker is no unfinished rebuild of a store. And
the backfill's summary counts one letter as "1 letter"."""

import pytest

from eventlog import Log
from schemas.events import SNAPSHOTTER_GROUP
from schemas.rebuilds import MARKER_GROUP, SNAPSHOTTER_RESET
from schemas.settings import Settings
from tests.tools.scripted import LETTER, scripted
from tools.backfill import ALL_RESET, Summary, backfill
from tools.progress import Meter
from tools.sources import open_sources
from tools.verify import unfinished

RESET = "UNFINISHED postgres: a reset of the snapshotter's tables (tools.backfill) did not finish"
NOTHING = "UNFINISHED postgres: the snapshotter has folded nothing of"


@pytest.fixture
def log_kind() -> str:
    return "embedded"


async def test_an_interrupted_reset_is_said_once(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        assert await unfinished(src) == []
        # What an interrupted reset leaves: its marker, the snapshotter's positions gone (and
        # an interrupted `all --reset`'s own marker, which names no store's rebuild).
        for marker in (SNAPSHOTTER_RESET, ALL_RESET):
            await src.pg.execute(
                "INSERT INTO consumer_positions (consumer_group, topic, partition, next_offset)"
                " VALUES ($1, $2, $3, 0)",
                MARKER_GROUP,
                *marker,
            )
        await src.pg.execute(
            "DELETE FROM consumer_positions WHERE consumer_group = $1", SNAPSHOTTER_GROUP
        )
        lines = await unfinished(src)
        assert len(lines) == 1 and lines[0].startswith(RESET), lines
        # Without the reset's marker the emptied positions are a database made again: per
        # partition.
        await src.pg.execute(
            "DELETE FROM consumer_positions WHERE consumer_group = $1 AND topic = $2",
            MARKER_GROUP,
            SNAPSHOTTER_RESET[0],
        )
        lines = await unfinished(src)
        assert lines and all(line.startswith(NOTHING) for line in lines), lines


async def test_one_letter_is_singular(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True) as src:
        summary = await backfill(src, "projector", letters=[LETTER], meter=Meter(every_s=3600))
    assert summary.lines[0].startswith("projector: 1 letter in "), summary.lines
    many = Summary()
    many.add("projector", 2, "letters", 0.5)
    many.add("snapshotter", 1, "events", 0.5)
    assert many.lines == [
        "projector: 2 letters in 0.5 s, 4 letters/s",
        "snapshotter: 1 event in 0.5 s, 2 events/s",
    ]
