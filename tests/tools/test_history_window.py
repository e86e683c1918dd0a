"""A history window (`--since`/`--until`, REST `since=&until=`) takes the edit bursts that overlap
it, each cut to the updates typed inside it: a burst was filtered by its first update's time
alone, so typing inside a window was missed when its burst began before it, and typing after
`until` was counted when it began inside. The reviewer's case, on a log with exact times, read
from PostgreSQL's audit trail, from the log alone, by the CLI and over REST, in pages."""

from collections.abc import Callable

import httpx
import pytest
import pytest_asyncio

from eventlog.embedded import EmbeddedLog
from eventlog.factory import topic_retention
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.commands.history import _history
from steno_collab.services import gateway_app
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.support import started_log
from tests.tools.rest import auth
from tests.tools.snapshots import run_to_end
from tools import history as histories
from tools.history import Entry, Order, describe, format_text, history, page
from tools.sources import Sources, open_sources
from tools.timefmt import iso

LETTER = "L-window"
T0 = 1_700_000_000_000  # the clock's start: alice's burst starts at T0 + 20 s


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


@pytest.fixture
def log_kind() -> str:
    return "embedded"  # a log whose clock the test moves: exact record times


@pytest_asyncio.fixture(loop_scope="session", params=["folded", "behind"])
async def written(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Settings:
    """Alice types "Hi" at 20.0-20.5 s, "A:" at 21.09 s and "Final: " at 22.0 s in one burst
    (within the 5 s edit window), then leaves at 40 s; bob comments at 30 s. The snapshotter
    folds it all, or stops after "A:" (its rows then end there: the rest is folded on the spot,
    the burst open across its position included)."""
    settings = make_settings()
    clock = Clock(T0)
    log = EmbeddedLog(settings.data_dir / "log", 1, topic_retention(settings), clock=clock)
    await log.start()
    s = LetterScript(LETTER)
    topic = settings.topic(Topic.LETTERS)
    try:
        await append(log, topic, [s.created("alice"), s.paragraph("alice", "")])
        for when, event in [
            (1.0, s.joined("alice", "tab-1")),
            (20.0, s.type_text("alice", 0, 0, "H", conn="tab-1")),
            (20.5, s.type_text("alice", 0, 1, "i", conn="tab-1")),
            (21.09, s.type_text("alice", 0, 2, "A:", conn="tab-1")),
            (22.0, s.type_text("alice", 0, 4, "Final: ", conn="tab-1")),
            (30.0, s.comment("bob", "t1", "c1", "ok?")),
            (40.0, s.left("alice", "tab-1")),
        ]:
            if when == 22.0 and request.param == "behind":
                await run_to_end(log, settings)
            clock.ms = at(when)
            await append(log, topic, [event])
        if request.param == "folded":
            await run_to_end(log, settings)
    finally:
        await log.close()
    if request.param == "behind":  # read with PostgreSQL: its rows and the tail folded here
        async with open_sources(settings, pg=True) as src:
            await history(src, LETTER)
        assert any(t.folder is not None and t.records for t in histories._tails.values())
    return settings


def _typed(entries: list[Entry]) -> list[tuple[str, int, int, int]]:
    """(time, characters inserted, updates, first offset) of each edit row (not the content the
    letter was created with)."""
    return [
        (iso(e.at_ms), e.data["inserted"], e.data["updates"], e.data["first_offset"])
        for e in entries
        if e.kind == "edit" and not e.data.get("initial")
    ]


async def _both(settings: Settings, since: float | None, until: float | None) -> list[Entry]:
    """The window's entries from PostgreSQL's trail and from the log alone: the same."""
    window = (None if since is None else at(since), None if until is None else at(until))
    async with open_sources(settings, pg=True) as src:
        from_pg = await history(src, LETTER, *window)
    async with open_sources(settings) as src:
        from_log = await history(src, LETTER, *window)
    assert [e.to_json() for e in from_pg] == [e.to_json() for e in from_log]
    return from_pg


async def test_a_window_shows_the_typing_inside_it_and_counts_none_after_it(
    written: Settings,
) -> None:
    whole = _typed(await _both(written, None, None))
    assert [row[1:3] for row in whole] == [(11, 4)]  # H, i, A:, Final:
    first = whole[0][3]
    # Typed inside [21.5, 23): "Final: " alone, though its burst began at 20 s.
    assert _typed(await _both(written, 21.5, 23)) == [(iso(at(22.0)), 7, 1, first + 3)]
    assert _typed(await _both(written, 21.0, 21.5)) == [(iso(at(21.09)), 2, 1, first + 2)]
    assert _typed(await _both(written, 20.0, None)) == whole
    # A window inside the burst where nothing was typed, or after its last update: no edit.
    assert _typed(await _both(written, 21.1, 21.9)) == []
    assert _typed(await _both(written, 22.001, 50)) == []
    comment = [e.kind for e in await _both(written, 22.001, 50)]
    assert comment == ["comment.created", "session-end", "version"]

    cli = await _history(written, LETTER, at(21.5), at(23), False)
    assert "edited: +7 -0 characters in paragraph 1 (1 update, 0.0 s)" in cli
    async with open_sources(written) as src:
        assert cli == format_text(await history(src, LETTER, at(21.5), at(23)))


async def test_until_counts_no_typing_after_it(written: Settings) -> None:
    # Up to 21.2 s: H, i and A: (4 characters in 3 updates), not the 7 typed at 22 s.
    assert _typed(await _both(written, None, 21.2)) == [(iso(at(20.0)), 4, 3, 3)]
    cli = await _history(written, LETTER, None, at(21.2), False)
    assert "edited: +4 -0 characters in paragraph 1 (3 updates, 1.1 s)" in cli


async def _walk(src: Sources, since: int, until: int, order: Order) -> list[Entry]:
    walked, after = await page(src, LETTER, since, until, None, 1, order)
    while after is not None:
        more, after = await page(src, LETTER, since, until, after, 1, order)
        walked += more
    return walked


@pytest.mark.parametrize("pg", [True, False])
async def test_pages_of_a_window_give_its_entries_once_in_either_order(
    written: Settings, pg: bool
) -> None:
    since, until = at(21.5), at(35)
    async with open_sources(written, pg=pg) as src:
        all_at_once = await history(src, LETTER, since, until)
        assert [e.kind for e in all_at_once] == ["edit", "comment.created"]
        assert await _walk(src, since, until, "asc") == all_at_once
        assert await _walk(src, since, until, "desc") == all_at_once[::-1]


async def test_rest_windows_alike(written: Settings) -> None:
    async with open_sources(written) as src:
        expected = [e.to_json() for e in await history(src, LETTER, at(21.5), at(23))]
    query = {"since": iso(at(21.5)), "until": iso(at(23))}
    async with started_log(written) as log:
        app = gateway_app(written, log, None, None)  # no PostgreSQL here: the log folded
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            r = await client.get(
                f"/v1/letters/{LETTER}/history", params=query, headers=auth(written, firm="firm-1")
            )
    assert r.status_code == 200, r.text
    assert r.json() == expected
    assert [(e["type"], e["data"]["inserted"]) for e in r.json()] == [("edit", 7)]


def test_a_dead_gateways_session_says_when_it_was_last_seen() -> None:
    """Its row is logged a minute or more after the session ended (projector/stale.py): the
    line gives the end as well as the record's time."""
    data = {"conn_id": "c1", "reason": "gateway gone: gw-1", "duration_ms": 7400}
    gone = Entry(
        1_700_000_078_100, "alice", "session-end", {**data, "ended_at_ms": 1_700_000_007_400}, 9
    )
    assert describe(gone) == (
        "left after 7.4 s (gateway gone: gw-1; last seen 2023-11-14T22:13:27.400+00:00)"
        " [session c1]"
    )
    closed = Entry(1_700_000_078_100, "alice", "session-end", {**data, "reason": "closed"}, 9)
    assert describe(closed) == "left after 7.4 s (closed) [session c1]"
