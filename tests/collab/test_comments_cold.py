"""A letter whose projector keys expired (`STENO_PROJECTOR_TTL_S`) keeps its comments and its
mentions: threads are read from PostgreSQL's durable projection, shaped as Redis held them,
and users' notifications have a retention of their own."""

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.collab import cold, shared
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.collab.cold_comments import TEXT, cold_collab, until_expired
from tests.collab.conftest import Collab
from tests.projector.support import redis_bytes
from tests.snapshotter.scripts import drain

TIMES = ("created_at", "edited_at")


async def _ok(c: Collab, method: str, path: str, user: str = "u1", **kw: Any) -> Any:
    r = await c.call(method, path, user=user, **kw)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _split(value: Any, times: list[int | None]) -> Any:
    """`value` with its times taken out (into `times`, in order), for comparing the rest."""
    if isinstance(value, list):
        return [_split(v, times) for v in value]
    if isinstance(value, dict):
        times += [value[k] for k in TIMES if k in value]
        return {k: None if k in TIMES else _split(v, times) for k, v in value.items()}
    return value


def _same_but_times(live: Any, durable: Any) -> None:
    """Equal, times aside: PostgreSQL's are the log's record times, taken a little after the
    gateway stamped the event (the projector's)."""
    live_times: list[int | None] = []
    durable_times: list[int | None] = []
    assert _split(durable, durable_times) == _split(live, live_times)
    for stamped, logged in zip(live_times, durable_times, strict=True):
        assert (stamped is None) == (logged is None)
        if stamped is not None and logged is not None:
            assert 0 <= logged - stamped < 2000, (stamped, logged)


async def _letter_with_threads(c: Collab) -> tuple[str, dict[str, str]]:
    """Threads with replies, mentions, an edit, deletions (a reply; a whole thread), one
    resolved: 5 live comments, the letter's cap."""
    lid = await c.gw.create_letter(TEXT)
    base = f"/v1/letters/{lid}/comments"
    at = TEXT.index("5000")
    new = {"body": "sure?", "anchor": {"from": at, "to": at + 8}, "mentions": ["u2"]}
    a = (await _ok(c, "POST", base, json=new))["thread_id"]
    await _ok(c, "POST", f"{base}/{a}/replies", "u2", json={"body": "yes", "mentions": ["u1"]})
    await _ok(c, "POST", f"{base}/{a}/resolve")
    end = {"body": "sign here", "anchor": {"from": len(TEXT) - 7, "to": len(TEXT)}}
    made = await _ok(c, "POST", base, "u2", json=end)
    b, b0 = made["thread_id"], made["comment_id"]
    edit = {"body": "sign here, please", "mentions": ["u3"]}
    await _ok(c, "PATCH", f"{base}/{b}/{b0}", "u2", json=edit)
    r2 = (await _ok(c, "POST", f"{base}/{b}/replies", json={"body": "why"}))["comment_id"]
    await _ok(c, "DELETE", f"{base}/{b}/{r2}")
    gone = await _ok(c, "POST", base, json={"body": "x", "anchor": {"from": 0, "to": 4}})
    await _ok(c, "DELETE", f"{base}/{gone['thread_id']}/{gone['comment_id']}")
    d = await _ok(c, "POST", base, json={"body": "dates", "anchor": {"from": 0, "to": 4}})
    reply = await _ok(c, "POST", f"{base}/{d['thread_id']}/replies", "u2", json={"body": "ok"})
    return lid, {"a": a, "b": b, "reply": reply["comment_id"], "d": d["thread_id"]}


async def test_a_cold_letters_threads_are_read_from_postgresql(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our appends count as recent this long (10 s): less than the TTL here, as a day is.
    monkeypatch.setattr(shared, "RECENT_APPENDS_S", 1.0)
    await migrate(pg_database)
    async with cold_collab(tmp_path, redis_db, pg_database) as c:
        lid, ids = await _letter_with_threads(c)
        base = f"/v1/letters/{lid}/comments"
        shown = await _ok(c, "GET", base)
        live = json.loads(redis_bytes(await c.redis.get(f"comments:{lid}")))
        assert [len(t["comments"]) for t in shown["threads"]] == [2, 1, 2]
        store = await Store.open(pg_database)
        try:
            await drain(Snapshotter(c.gw.settings, c.gw.log, store), c.gw.log)
        finally:
            await store.close()

        await until_expired(c, lid)
        _same_but_times(live, await cold.threads(c.gw.app.state.collab, lid))
        started = time.monotonic()
        _same_but_times(shown, await _ok(c, "GET", base))
        # Not held up waiting for the projector to fold appends it folded a TTL ago.
        assert time.monotonic() - started < shared.CATCH_UP_S
        # Writes check the threads as GET reads them: the cap, the author, the thread.
        r = await c.call("POST", base, json={"body": "more", "anchor": {"from": 0, "to": 4}})
        assert r.status_code == 409, r.text
        r = await c.call("PATCH", f"{base}/{ids['d']}/{ids['reply']}", json={"body": "mine"})
        assert r.status_code == 403, r.text  # u2's reply
        assert not await c.redis.exists(f"ydoc:{lid}:offset")  # nothing appended: still cold
        # A reset rebuild of the snapshotter's tables under way: a partial list is not served.
        marker = (
            "INSERT INTO consumer_positions VALUES ('tools.backfill', 'snapshotter-reset', 0, 0)"
        )
        pg = await asyncpg.connect(pg_database)
        try:
            await pg.execute(marker)
            r = await c.call("GET", base)
            assert r.status_code == 503 and r.headers["Retry-After"] == "30", r.text
            await pg.execute(
                "DELETE FROM consumer_positions WHERE consumer_group = 'tools.backfill'"
            )
        finally:
            await pg.close()
        await _ok(c, "POST", f"{base}/{ids['b']}/resolve")
        threads = (await _ok(c, "GET", base))["threads"]  # the projector has it again
    assert [t["resolved"] for t in threads] == [True, True, False]


async def test_without_postgresql_a_cold_letter_answers_503_and_mentions_stay(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared, "RECENT_APPENDS_S", 1.0)
    async with cold_collab(tmp_path, redis_db, None) as c:
        lid = await c.gw.create_letter(TEXT)
        base = f"/v1/letters/{lid}/comments"
        new = {"body": "look", "anchor": {"from": 0, "to": 4}, "mentions": ["u2"]}
        made = await _ok(c, "POST", base, json=new)
        await until_expired(c, lid)
        r = await c.call("GET", base, user="u2")
        assert r.status_code == 503 and r.headers["Retry-After"], r.text  # not an empty list
        # u2's mention outlives the letter's keys, and can still be read.
        notes = await _ok(c, "GET", "/v1/notifications", "u2")
        assert [n["comment_id"] for n in notes["notifications"]] == [made["comment_id"]]
        assert (await _ok(c, "POST", "/v1/notifications/read", "u2", json={"all": True})) == {
            "marked": 1
        }
        notes = await _ok(c, "GET", "/v1/notifications", "u2")
    assert notes["unread"] == 0 and notes["notifications"][0]["read"] is True


def test_an_author_without_a_name_in_the_event_takes_his_sessions_name() -> None:
    at = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    row = {
        "thread_id": "t1",
        "anchor": '{"start": "s", "end": "e", "quote": "q", "after": ""}',
        "status": "open",
        "created_by": "u1",
        "thread_at": at,
        "author_id": "u1",
        "body": "b",
        "mentions": "[]",
        "created_at": at,
        "edited_at": None,
    }
    rows = [
        {**row, "comment_id": "c1", "log_offset": 5, "name": None},  # made before `author`
        {**row, "comment_id": "c2", "log_offset": 9, "name": "Una"},
    ]
    sessions = [("u1", 1, "Old"), ("u2", 2, "Other"), ("u1", 3, "U. One"), ("u1", 7, "Later")]
    (thread,) = cold.shape(rows, sessions)
    assert [c["author"] for c in thread["comments"]] == [
        {"id": "u1", "name": "U. One"},  # as the projector knew him then
        {"id": "u1", "name": "Una"},
    ]
    assert thread["created_at"] == thread["comments"][0]["created_at"] == 1796515200000
