"""GET /v1/letters: the caller's firm's letters, newest first, from the snapshotter's table
plus the ones this instance just created."""

import asyncio
import contextlib
import datetime as dt
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx

from eventlog.records import Log
from gateway import listing
from gateway.access import Access, LetterMeta, _Known
from gateway.listing import Cursor, Remembered, page
from schemas.settings import Settings
from snapshotter.migrate import migrate
from snapshotter.service import serve as run_snapshotter
from tests.gateway.harness import Running, running_gateway
from tests.support import eventually


async def _list(gw: Running, firm: str, limit: int = 100) -> list[str]:
    async with httpx.AsyncClient(base_url=gw.http) as http:
        r = await http.get(
            f"/v1/letters?limit={limit}",
            headers={"Authorization": f"Bearer {gw.token(firm=firm)}"},
        )
    assert r.status_code == 200, r.text
    return [letter["letter_id"] for letter in r.json()["letters"]]


async def test_lists_only_the_callers_firm_newest_first(tmp_path: Path, pg_database: str) -> None:
    await migrate(pg_database)
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, database_url=pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        async with running_gateway(settings, pg=pg) as gw:
            first = await gw.create_letter(firm="firm-a", title="one")
            second = await gw.create_letter(firm="firm-a", title="two")
            other = await gw.create_letter(firm="firm-b", title="theirs")
            # Read-your-writes before the snapshotter has seen anything.
            assert await _list(gw, "firm-a") == [second, first]
            assert await _list(gw, "firm-b") == [other]
            snapshotter = asyncio.create_task(run_snapshotter(settings, gw.log))
            try:
                await eventually(
                    lambda: pg.fetchval("SELECT count(*) FROM letters WHERE firm_id = 'firm-a'"),
                    timeout=20,
                )
                await eventually(
                    lambda: pg.fetchval("SELECT count(*) = 3 FROM letters"), timeout=20
                )
            finally:
                snapshotter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await snapshotter
            await gw.log.close()
        # A fresh instance knows nothing in memory: the list now comes from PostgreSQL.
        async with running_gateway(settings, pg=pg) as fresh:
            assert await _list(fresh, "firm-a") == [second, first]
            async with httpx.AsyncClient(base_url=fresh.http) as http:
                r = await http.get("/v1/letters")
            assert r.status_code == 401
    finally:
        await pg.close()


async def _create(http: httpx.AsyncClient, gw: Running, title: str) -> None:
    token = gw.token(firm="firm-many", role="service")  # no REST budget to run out of
    body = {"firm_id": "firm-many", "title": title}
    r = await http.post("/v1/letters", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


async def _page(http: httpx.AsyncClient, url: str, token: str) -> tuple[list[str], str | None]:
    r = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    following = r.links.get("next", {}).get("url")
    assert (following is None) == ("X-Next-Cursor" not in r.headers)
    return [letter["title"] for letter in r.json()["letters"]], following


async def test_a_long_running_instance_lists_the_newest_letters_in_pages(
    tmp_path: Path, pg_database: str
) -> None:
    """An instance that knows every letter (it made them) lists the newest once the snapshotter
    holds them all, not the ones PostgreSQL's page left out (they were put first, as fresh)."""
    await migrate(pg_database)
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, database_url=pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        async with running_gateway(settings, pg=pg) as gw:
            token = gw.token(firm="firm-many")
            async with httpx.AsyncClient(base_url=gw.http, timeout=30) as http:
                await asyncio.gather(*(_create(http, gw, f"L{i:03d}") for i in range(105)))
            # One at a time, each its own record time: R1's 5 letters listed 2 at a time.
            five = [await gw.create_letter(firm="firm-five", title=f"L{i}") for i in range(5)]
            snapshotter = asyncio.create_task(run_snapshotter(settings, gw.log))
            try:
                await eventually(
                    lambda: pg.fetchval("SELECT count(*) = 110 FROM letters"), timeout=30
                )
            finally:
                snapshotter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await snapshotter
            # Made at once, so their order is the log's: the records' times, then ids.
            newest_first = [
                row["title"]
                for row in await pg.fetch(
                    "SELECT title FROM letters WHERE firm_id = 'firm-many'"
                    ' ORDER BY created_at DESC, letter_id COLLATE "C" DESC'
                )
            ]
            async with httpx.AsyncClient(base_url=gw.http) as http:
                listed, following = await _page(http, "/v1/letters", token)
                assert listed == newest_first[:100] and following is not None
                assert (await _page(http, "/v1/letters?limit=2", token))[0] == newest_first[:2]
                assert await _list(gw, "firm-five", limit=2) == [five[4], five[3]]
                # The cursor walks every letter once, in order, across pages.
                walked: list[str] = []
                url: str | None = "/v1/letters?limit=10"
                while url is not None:
                    listed, url = await _page(http, url, token)
                    walked += listed
                assert walked == newest_first
                # Read-your-writes: a letter the table lacks yet comes first.
                await gw.create_letter(firm="firm-many", title="fresh")
                assert (await _page(http, "/v1/letters?limit=2", token))[0] == [
                    "fresh",
                    newest_first[0],
                ]
                r = await http.get(
                    "/v1/letters?after=bm9wZQ", headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status_code == 422, r.text
    finally:
        await pg.close()


def _uuid7_at(ms: int) -> str:
    return str(uuid.UUID(int=ms << 80 | 0x7 << 76 | 0b10 << 62))


async def test_a_known_letter_the_table_holds_is_listed_at_the_tables_place(
    pg_database: str,
) -> None:
    """Its id's time (another gateway's clock) may say newer than its row: the row wins. A
    letter the table lacks goes in by its id's time; without PostgreSQL only they are listed."""
    await migrate(pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        skewed, fresh = _uuid7_at(4000), _uuid7_at(2500)
        rows = [(skewed, "A", 1000), ("b", "B", 2000), ("c", "C", 3000)]
        await pg.executemany(
            "INSERT INTO letters (letter_id, firm_id, title, created_by, created_at, log_topic,"
            " log_partition, log_offset) VALUES ($1, 'f', $2, 'u', $3, 't', 0, 0)",
            [(i, t, dt.datetime.fromtimestamp(ms / 1000, dt.UTC)) for i, t, ms in rows],
        )
        known = Remembered([(skewed, "A"), (fresh, "D")])
        walked: list[str] = []
        after: Cursor | None = None
        while True:
            found, after = await page(pg, "f", known, 1, after)
            walked += [title for _, _, title in found]
            if after is None:
                break
        assert walked == ["C", "D", "B", "A"]
        known.add("not-a-uuid", "Z")
        found, more = await page(None, "f", known, 3, None)
        assert [title for _, _, title in found] == ["A", "D", "Z"] and more is None
    finally:
        await pg.close()


def test_a_forgotten_letter_leaves_its_firms_list() -> None:
    known = _Known(2)
    for letter_id, firm in (("l0", "f"), ("l1", "f"), ("l2", "g")):
        known.add(LetterMeta(letter_id, firm, ""))
    assert set(known) == {"l1", "l2"}
    assert {firm: set(letters) for firm, letters in known.firms.items()} == {
        "f": {"l1"},
        "g": {"l2"},
    }


_INSERT = (
    "INSERT INTO letters (letter_id, firm_id, title, created_by, created_at, log_topic,"
    " log_partition, log_offset) VALUES ($1, 'f', $2, 'u', $3, 't', 0, 0)"
)


class _SnapshotterBetween:
    """The pool, with the snapshotter committing a letter right after the page's first read."""

    def __init__(self, pg: asyncpg.Pool, letter_id: str, title: str, ms: int) -> None:
        self.pg, self.row, self.done = pg, (letter_id, title, ms), False

    async def fetch(self, query: str, *args: Any) -> Any:
        found = await self.pg.fetch(query, *args)
        if not self.done:
            self.done = True
            letter_id, title, ms = self.row
            at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
            await self.pg.execute(_INSERT, letter_id, title, at)
        return found


async def test_a_letter_the_snapshotter_commits_during_a_page_is_listed(pg_database: str) -> None:
    """Committed right after the page's first read, it must be listed: the page and the
    question which known letters the table holds are one read (two reads, the second after the
    commit, had the page miss it and the known letter taken as held)."""
    await migrate(pg_database)
    pg = await asyncpg.create_pool(pg_database, min_size=1, max_size=2)
    try:
        await pg.execute(_INSERT, "old", "OLD", dt.datetime.fromtimestamp(1, dt.UTC))
        fresh = _uuid7_at(5000)
        between = _SnapshotterBetween(pg, fresh, "NEW", 5003)
        found, _ = await page(between, "f", Remembered([(fresh, "NEW")]), 10, None)
        assert between.done and [title for _, _, title in found] == ["NEW", "OLD"]
    finally:
        await pg.close()


def test_a_cursor_holds_any_id_the_table_can() -> None:
    for letter_id in ("a.b/c d:e", "ünïcode", "x" * 300):
        cursor = Cursor(1234, letter_id)
        assert Cursor.decode(cursor.encode()) == cursor


async def test_a_page_starts_its_index_scan_at_the_cursor(pg_database: str) -> None:
    """The page reads the firm's rows in list order from an index (no sort of the firm's every
    row), from the cursor on, also in the generic plan a prepared statement comes to use."""
    await migrate(pg_database)
    conn = await asyncpg.connect(pg_database)
    try:
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        await conn.executemany(
            _INSERT.replace("'f'", "$4"),
            [(f"l{i:05d}", "t", base + dt.timedelta(seconds=i), f"f{i % 4}") for i in range(4000)],
        )
        await conn.execute("ANALYZE letters")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE first_page AS {listing._FIRST}")
        await conn.execute(f"PREPARE later_page AS {listing._AFTER}")
        for run, cond in (
            ("EXECUTE first_page('f1', 11)", "(firm_id = $1)"),
            ("EXECUTE later_page('f1', 11, '2026-01-01 00:30:00Z', 'l01800')", "ROW(created_at"),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {run}"))
            assert "Index Scan using letters_firm_page" in plan and "Sort" not in plan, plan
            assert cond in plan.split("Index Cond:")[1].split("\n")[0], plan
    finally:
        await conn.close()


async def test_a_page_parses_no_remembered_id(tmp_path: Path, monkeypatch: Any) -> None:
    """A letter's sort key is worked out once, when remembered, not for each of the firm's
    remembered letters on every page (100,000 of them cost the event loop ~0.4 s a page)."""
    access = Access(Settings(data_dir=tmp_path), log_=cast(Log, None))
    for i in range(1000):
        access.remember(LetterMeta(_uuid7_at(i + 1), "f", f"L{i}"))
    parsed: list[str] = []

    def counted(letter_id: str, parse: Any = listing.id_ms) -> int:
        parsed.append(letter_id)
        return int(parse(letter_id))

    monkeypatch.setattr(listing, "id_ms", counted)
    found, more = await access.list_firm("f", 10)
    assert [m.title for m in found] == [f"L{i}" for i in range(999, 989, -1)] and more
    found, _ = await access.list_firm("f", 10, more)
    assert [m.title for m in found] == [f"L{i}" for i in range(989, 979, -1)]
    assert parsed == []
