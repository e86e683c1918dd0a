"""REST history's seam with the snapshotter, kept between requests: the letter's records past
the snapshotter's position are read and folded once; a refresh reads nothing more when nothing
moved, only the records appended when the log grew, and folds again from the saved state only
when the position moved. Answers are the log's own fold's. A record the snapshotter
quarantined, among those its saved state lags, is skipped there as the snapshotter skipped it."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from eventlog import Log
from gateway.live import loader
from schemas import rebuilds
from schemas.envelope import new_event
from schemas.events import Topic
from schemas.settings import Settings
from tests.attacks.panics import panicking_update
from tests.snapshotter.scripts import LetterScript, append
from tests.tools.rest import auth
from tests.tools.snapshots import run_to_end
from tests.tools.snapshotter_behind import LETTER, client, folded_then_more, folds
from tools import history as histories
from tools.history import history
from tools.sources import Sources, open_sources

__all__ = ["client", "folds"]  # the fixtures
BASE = f"/v1/letters/{LETTER}/history"


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # the seam with PostgreSQL is under test, not the log


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, int | None, int]]:
    """Each scan of the log history made: (start, end, the letter's records it yielded)."""
    made: list[tuple[int | None, int | None, int]] = []
    scan = loader.scan

    async def counted(log: Any, topic: str, letter_id: str, start: Any, end: Any = None) -> Any:
        made.append((start, end, 0))
        async for record in scan(log, topic, letter_id, start, end):
            made[-1] = (start, end, made[-1][2] + 1)
            yield record

    monkeypatch.setattr(histories, "scan", counted)
    return made


@pytest_asyncio.fixture(loop_scope="session")
async def fresh() -> AsyncIterator[None]:
    """No fold kept from another test (the caches are per log object: ids are reused)."""
    histories._tails.clear()
    histories._folds.clear()
    yield
    histories._tails.clear()
    histories._folds.clear()


async def _log_fold(settings: Settings, letter_id: str = LETTER) -> list[Any]:
    async with open_sources(settings) as src:  # the log alone: no PostgreSQL, no seam
        return [e.to_json() for e in await history(src, letter_id)]


async def _get(client: httpx.AsyncClient, settings: Settings, base: str = BASE) -> list[Any]:
    r = await client.get(base, headers=auth(settings, firm="firm-1"))
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_a_refresh_reads_only_what_the_log_appended(
    client: httpx.AsyncClient,
    settings: Settings,
    log: Log,
    folds: list[str],
    reads: list[tuple[int | None, int | None, int]],
    pool: Any,
    fresh: None,
) -> None:
    s = await folded_then_more(log, settings)
    topic = settings.topic(Topic.LETTERS)
    first = await _get(client, settings)
    # The five records past the position, and the four its saved state lags (its catch-up).
    assert folds == [LETTER] and reads == [(5, 10, 5), (1, 5, 4)]
    assert first == await _log_fold(settings)
    reads.clear()
    # Nothing moved: a refresh, and `unfolded` (/versions, /diff), read no record.
    again = await _get(client, settings)
    src = Sources(settings, log, None, pool)
    assert await histories.unfolded(src, LETTER) == 5
    assert reads == [] and folds == [LETTER]
    # The log grew (another letter's record too): only what was appended is read, and folded
    # on from the kept fold (not from the saved state again).
    end = (await log.end_offsets(topic))[0]
    other = LetterScript("L-other")
    await append(log, topic, [other.created("dan"), s.comment("bob", "t3", "c3", "late")])
    grown = await _get(client, settings)
    assert await histories.unfolded(src, LETTER) == 6
    assert reads == [(end, end + 2, 1)] and folds == [LETTER]
    assert grown == await _log_fold(settings) and grown[:-1] == again
    assert grown[-1]["data"]["body"] == "late"
    # The snapshotter moved: folded again from its state there, the records past it alone.
    await run_to_end(log, settings)
    await append(log, topic, [s.comment("bob", "t4", "c4", "later")])
    reads.clear()
    moved = await _get(client, settings)
    assert folds == [LETTER, LETTER] and reads[0] == (end + 2, end + 3, 1)
    assert moved == await _log_fold(settings)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[Any]:
    assert settings.database_url is not None
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=2) as the_pool:
        yield the_pool


async def test_a_quarantined_record_the_saved_state_lags_is_skipped_by_the_seam(
    client: httpx.AsyncClient,
    settings: Settings,
    log: Log,
    folds: list[str],
    monkeypatch: pytest.MonkeyPatch,
    pool: Any,
    fresh: None,
) -> None:
    """The snapshotter quarantined a record (a Yrs panic) and has not saved the letter's state
    since: the seam catches the state up over it skipping it, as the snapshotter did, and so
    answers (without the skip the fold raises and the whole log is folded instead)."""
    s, topic = LetterScript(LETTER), settings.topic(Topic.LETTERS)
    poison = new_event(LETTER, panicking_update(s.doc.client_id, 0), firm=s.firm,
                       user="mallory", type="doc.update")  # fmt: skip
    await append(log, topic, [s.created("alice"), s.paragraph("alice", "before"), poison,
                              s.paragraph("alice", "after")])  # fmt: skip
    await run_to_end(log, settings)
    assert (
        await pool.fetchval("SELECT log_offset FROM quarantine WHERE letter_id = $1", LETTER) == 2
        and await pool.fetchval(
            "SELECT since FROM snapshotter_unsaved WHERE letter_id = $1", LETTER
        )
        < 2
    )  # the saved state lags the poison: the seam folds over it
    await append(log, topic, [s.comment("bob", "t1", "c1", "past the position")])
    whole: list[str] = []
    from_log = histories._from_log

    async def counted(src: Any, letter_id: str) -> Any:
        whole.append(letter_id)
        return await from_log(src, letter_id)

    monkeypatch.setattr(histories, "_from_log", counted)
    got = await _get(client, settings)
    assert folds == [LETTER] and whole == []  # the seam answered
    monkeypatch.setattr(histories, "_from_log", from_log)
    assert got == await _log_fold(settings)
    assert got[-1]["data"]["body"] == "past the position"


async def test_the_snapshotter_committing_during_a_request(
    client: httpx.AsyncClient,
    settings: Settings,
    log: Log,
    folds: list[str],
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
) -> None:
    """The snapshotter commits between the read of the log and the rows' snapshot: the kept
    records it passed are PostgreSQL's rows by then, so they are dropped, not shown twice, and
    the rest is folded from its state saved there."""
    s = await folded_then_more(log, settings)
    topic = settings.topic(Topic.LETTERS)
    await _get(client, settings)  # kept: the records past the first position
    await append(log, topic, [s.comment("bob", "t3", "c3", "folded during the request")])
    position = rebuilds.snapshotter_position
    armed = [True]

    async def committing_meanwhile(conn: Any, *args: Any) -> Any:
        seen = await position(conn, *args)
        if armed.pop() if armed else False:  # once: after the history read its position
            await run_to_end(log, settings)
            await append(log, topic, [s.comment("bob", "t4", "c4", "past the new position")])
        return seen

    monkeypatch.setattr(histories, "snapshotter_position", committing_meanwhile)
    got = await _get(client, settings)
    assert got == await _log_fold(settings) and folds == [LETTER, LETTER]
    bodies = [e["data"]["body"] for e in got if e["type"] == "comment.created"]
    assert bodies[-2:] == ["folded during the request", "past the new position"]
    monkeypatch.setattr(histories, "snapshotter_position", position)
    assert await _get(client, settings) == got  # a refresh: nothing new
    (tail,) = histories._tails.values()
    offsets = [r.offset for r in tail.records]
    assert offsets and len(set(offsets)) == len(offsets) and tail.next > max(offsets), offsets


async def test_a_request_does_not_wait_behind_another_reading_the_log(
    client: httpx.AsyncClient,
    settings: Settings,
    log: Log,
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
) -> None:
    """While one request's read of the log is slow (a stalled broker), another for the same
    letter reads on its own instead of queueing behind it (they used to wait in line)."""
    await folded_then_more(log, settings)
    real, stalled, release = loader.scan, asyncio.Event(), asyncio.Event()  # as history imports it

    async def slow(*args: Any, **kwargs: Any) -> Any:
        if not stalled.is_set():  # the first read only
            stalled.set()
            await release.wait()
        async for record in real(*args, **kwargs):
            yield record

    monkeypatch.setattr(histories, "scan", slow)
    first = asyncio.create_task(_get(client, settings))
    await stalled.wait()
    second = await _get(client, settings)  # answered while the first still waits
    assert not first.done()
    release.set()
    assert await first == second == await _log_fold(settings)
