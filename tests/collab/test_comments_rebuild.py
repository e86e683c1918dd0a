"""While the projector rebuilds its Redis keys from the log (`backfill projector --reset`, or its
own replay after a wipe), they hold a letter's comments and its users' notifications folded from
part of the log. Reads must not pass that off as the whole: comments come from PostgreSQL (the
snapshotter's tables), notifications answer 503; once the rebuild is done, Redis serves again.
The rebuild is the real one (the backfill's fold and the live projector's replay), held right
after its first partial write of the letter's partition."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from gateway.collab import shared
from projector.store import TP, Store
from schemas.events import Topic
from schemas.rebuilds import PROJECTOR_REPLAYS, PROJECTOR_RESET
from snapshotter.migrate import migrate
from tests.collab import stack
from tests.collab.conftest import Collab
from tests.projector.support import OPTIONS, append, awareness, caught_up
from tests.support import eventually
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources

TEXT = "Dear Sir,\nWe demand 5000 EUR within 14 days.\nRegards"
# One record per batch and commit: a rebuild writes the letter's history a record at a time.
SLOW = OPTIONS.model_copy(update={"batch_records": 1, "follow_batch": 1})


class Hold:
    """Holds every projector write (live instance and backfill alike) once one has moved the
    letters partition `tp` to a position short of `end`: the rebuild stops half-way."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tp: TP | None = None
        self.end = 0
        self.held, self.gate = asyncio.Event(), asyncio.Event()
        original = Store.commit

        async def commit(store: Store, fence: Any, *args: Any, **kw: Any) -> Any:
            if self.held.is_set():
                await self.gate.wait()
            result = await original(store, fence, *args, **kw)
            if result is None and self.tp in fence and fence[self.tp][1] < self.end:
                self.held.set()
            return result

        monkeypatch.setattr(Store, "commit", commit)

    def arm(self, tp: TP, end: int) -> None:
        self.tp, self.end = tp, end


def services(tmp_path: Path, redis_db: str, dsn: str) -> AbstractAsyncContextManager[Collab]:
    return stack.services(tmp_path, redis_db, dsn, SLOW)


def _outline(shown: Any) -> list[tuple[str, list[str]]]:
    """Threads and their comments, ids and bodies (PostgreSQL's times are the log's)."""
    return [
        (t["thread_id"], [f"{m['comment_id']} {m['body']}" for m in t["comments"]])
        for t in shown["threads"]
    ]


@pytest.mark.parametrize("how", ["wipe", "reset"])
async def test_comments_and_notifications_are_not_served_half_rebuilt(
    tmp_path: Path,
    redis_db: str,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # how long a read waits for PostgreSQL
    await migrate(pg_database)
    hold = Hold(monkeypatch)
    async with services(tmp_path, redis_db, pg_database) as c:
        lid = await c.gw.create_letter(TEXT)
        base = f"/v1/letters/{lid}/comments"
        for at in (0, 10, 20):
            new = {"body": f"at {at}", "anchor": {"from": at, "to": at + 4}, "mentions": ["u2"]}
            await stack.ok(c, "POST", base, json=new)
        first = (await stack.ok(c, "GET", base))["threads"][0]["thread_id"]
        await stack.ok(c, "POST", f"{base}/{first}/replies", "u2", json={"body": "agreed"})
        whole = _outline(await stack.ok(c, "GET", base))
        assert [len(comments) for _, comments in whole] == [2, 1, 1]
        assert (await stack.ok(c, "GET", "/v1/notifications", "u2"))["unread"] == 3
        await stack.snapshot(c, pg_database)

        topic = c.gw.settings.topic(Topic.LETTERS)
        partition = c.gw.log.partition_for(topic, lid.encode())
        hold.arm((topic, partition), (await c.gw.log.end_offsets(topic))[partition])
        rebuild: asyncio.Task[Any] | None = None
        if how == "wipe":  # the live projector notices and replays every partition
            await c.redis.flushdb()
        else:
            src = Sources(c.gw.settings, c.gw.log, c.redis)
            meter = Meter(every_s=3600)
            run = backfill(src, "projector", reset=True, meter=meter, projector_options=SLOW)
            rebuild = asyncio.create_task(run)
        await asyncio.wait_for(hold.held.wait(), 10)
        assert await c.redis.exists(f"ydoc:{lid}:offset")  # a position short of the end
        assert await c.redis.exists(PROJECTOR_RESET, PROJECTOR_REPLAYS)

        # Comments: PostgreSQL's, whole; a reply to an old thread is taken, to none is 404.
        assert _outline(await stack.ok(c, "GET", base, "u3")) == whole
        r = await c.call("POST", f"{base}/no-such-thread/replies", json={"body": "x"})
        assert r.status_code == 404, r.text
        made = await stack.ok(c, "POST", f"{base}/{first}/replies", "u2", json={"body": "during"})
        # PostgreSQL has not folded the reply yet: neither a list without it nor one from Redis.
        r = await c.call("GET", base, "u3")
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        await stack.snapshot(c, pg_database)
        during = _outline(await stack.ok(c, "GET", base, "u3"))
        assert during[0][1][-1] == f"{made['comment_id']} during"
        assert during[1:] == whole[1:]
        # Notifications: 503 with Retry-After, not a partial list.
        for method, path in (("GET", "/v1/notifications"), ("POST", "/v1/notifications/read")):
            r = await c.call(method, path, "u2", json={"all": True})
            assert r.status_code == 503 and r.headers["Retry-After"], r.text

        hold.gate.set()
        if rebuild is not None:
            await rebuild
        await caught_up(c.gw.log, c.gw.settings, c.redis)
        assert not await c.redis.exists(PROJECTOR_RESET, PROJECTOR_REPLAYS)
        assert await c.redis.exists(f"comments:{lid}")  # served from Redis again
        assert _outline(await stack.ok(c, "GET", base, "u3")) == during
        assert (await stack.ok(c, "GET", "/v1/notifications", "u2"))["unread"] == 3


async def test_a_presence_batch_first_after_a_wipe_does_not_pass_for_the_whole_letter(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a wipe the letters partition has no position yet: a batch of presence records
    alone (its topic's fetch back first, as on Kafka) writes the letter's keys (`comments:<id>`
    = [], an offset) before the letters replay commits anything. Its marker must come with
    them, else those keys read as "folded, no threads"."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)
    await migrate(pg_database)
    async with services(tmp_path, redis_db, pg_database) as c:
        lid = await c.gw.create_letter(TEXT)
        base = f"/v1/letters/{lid}/comments"
        await stack.ok(c, "POST", base, json={"body": "hello", "anchor": {"from": 0, "to": 4}})
        await append(c.gw.log, c.gw.settings, [awareness(lid, 7, 1, {"user": {"n": "A"}}, "c-x")])
        await caught_up(c.gw.log, c.gw.settings, c.redis)
        await stack.snapshot(c, pg_database)

        letters = c.gw.settings.topic(Topic.LETTERS)
        gate = asyncio.Event()
        follow = c.gw.log.follow

        async def letters_later(topic: str, *args: Any, **kw: Any) -> AsyncIterator[Any]:
            if topic == letters:
                await gate.wait()
            async for batch in follow(topic, *args, **kw):
                yield batch

        monkeypatch.setattr(c.gw.log, "follow", letters_later)
        await c.redis.flushdb()

        async def written() -> bool:
            return bool(await c.redis.exists(f"ydoc:{lid}:offset"))

        await eventually(written)  # by the presence batch alone
        try:
            during = await c.call("GET", base, user="u3")
            assert during.status_code == 200, during.text
            assert [t["comments"][0]["body"] for t in during.json()["threads"]] == ["hello"]
        finally:
            gate.set()
        await caught_up(c.gw.log, c.gw.settings, c.redis)
        assert not await c.redis.exists(PROJECTOR_REPLAYS)


async def test_notifications_answer_a_rebuild_at_once(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The markers are read before waiting for the projector to cover the caller's recent
    appends: that wait (up to 2 s) would be for a 503 anyway."""
    await migrate(pg_database)
    async with services(tmp_path, redis_db, pg_database) as c:
        waited: list[str] = []

        async def caught_up_all(_: Any, firm_id: str) -> None:
            waited.append(firm_id)

        monkeypatch.setattr(shared.Collab, "caught_up_all", caught_up_all)
        await c.redis.set(PROJECTOR_RESET, "rebuilding")
        for method, path, body in (
            ("GET", "/v1/notifications", None),
            ("POST", "/v1/notifications/read", {"all": True}),
        ):
            r = await c.call(method, path, user="u2", json=body)
            assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert waited == []
