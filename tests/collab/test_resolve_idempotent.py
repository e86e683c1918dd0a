"""Resolving a resolved thread, or reopening an open one, appends nothing: each event is an
audit row kept for good, and a repeat (a retry, a double click) changes nothing."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import verify_token
from gateway.collab import flagged, resolving, shared, stored_threads
from schemas.events import CommentReopened, Topic
from snapshotter.migrate import migrate
from tests.collab import stack
from tests.collab.conftest import Collab, Stoppable, stoppable_on
from tests.collab.held_projector import Hold
from tests.gateway.harness import running_gateway, types_of
from tests.projector.support import caught_up, projector
from tests.support import eventually

RESOLVED, REOPENED = "comment.resolved", "comment.reopened"


async def _flags(c: Collab, letter: str) -> list[str]:
    kinds = types_of(await c.gw.records(Topic.LETTERS, letter))
    return [k for k in kinds if k in (RESOLVED, REOPENED)]


async def _thread(c: Collab, letter: str, at: int = 0) -> str:
    made = await c.call(
        "POST",
        f"/v1/letters/{letter}/comments",
        json={"body": "x", "anchor": {"from": at, "to": 4}},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["thread_id"])


async def _flag(c: Collab, letter: str, thread: str, action: str, user: str = "u1") -> bool:
    """POST `action` (resolve, reopen) to the thread: 200, and whether it answers resolved."""
    r = await c.call("POST", f"/v1/letters/{letter}/comments/{thread}/{action}", user=user)
    assert r.status_code == 200, r.text
    assert r.json()["thread_id"] == thread
    return bool(r.json()["resolved"])


async def test_repeated_resolves_and_reopens_append_once(collab: Collab) -> None:
    letter = await collab.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
    thread = await _thread(collab, letter)

    assert await _flag(collab, letter, thread, "reopen") is False  # open already
    assert await _flags(collab, letter) == []

    # At once, as a double click sends them: one is checked after the other's append.
    both = await asyncio.gather(*(_flag(collab, letter, thread, "resolve") for _ in range(2)))
    assert both == [True, True]
    # Later, by someone else.
    assert await _flag(collab, letter, thread, "resolve", user="u2") is True
    assert await _flags(collab, letter) == [RESOLVED]

    for _ in range(2):
        assert await _flag(collab, letter, thread, "reopen") is False
    assert await _flags(collab, letter) == [RESOLVED, REOPENED]
    threads = (await collab.call("GET", f"/v1/letters/{letter}/comments")).json()["threads"]
    assert [t["resolved"] for t in threads] == [False]


@dataclass
class Down:
    """A letter with threads whose comments the projector folded before it stopped (no
    PostgreSQL either): no store reaches the log's end."""

    running: Stoppable
    letter: str
    threads: list[str]

    @property
    def c(self) -> Collab:
        return self.running.collab

    async def flag(self, action: str, thread: int = 0, c: Collab | None = None) -> bool:
        return await _flag(c or self.c, self.letter, self.threads[thread], action)

    async def flags(self) -> list[str]:
        return await _flags(self.c, self.letter)

    async def caught_up(self) -> None:
        await caught_up(self.running.log, self.running.settings, self.c.redis)

    @contextlib.asynccontextmanager
    async def projector_again(self) -> AsyncIterator[None]:
        """The projector started again, once it has folded the log to its end."""
        async with projector(self.running.settings, self.running.log):
            await self.caught_up()
            yield

    async def listed_resolved(self) -> list[bool]:
        got = await self.c.call("GET", f"/v1/letters/{self.letter}/comments")
        return [t["resolved"] for t in got.json()["threads"]]


@pytest.fixture
def quick_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # the waits for the stopped projector


@contextlib.asynccontextmanager
async def _down(
    tmp_path: Path, redis_db: str, threads: int = 1, resolved_first: bool = False
) -> AsyncIterator[Down]:
    """`threads` threads (at 0, 1, ...), the first one resolved before the projector stops if
    `resolved_first`."""
    async with stoppable_on(tmp_path, redis_db) as running:
        c = running.collab
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        down = Down(running, letter, [await _thread(c, letter, at) for at in range(threads)])
        if resolved_first:
            assert await down.flag("resolve") is True
        await down.caught_up()
        await running.folding.aclose()  # the projector stops
        yield down


@pytest.mark.usefixtures("quick_reads")
async def test_a_resolve_after_an_unfolded_reopen_is_kept(tmp_path: Path, redis_db: str) -> None:
    """The projector stops after folding a resolve; a reopen is logged, unfolded; a resolve now
    reads "resolved" from the projection: the log's last word is the reopen, so it must append
    (skipping it would answer `resolved` and leave the thread open)."""
    async with _down(tmp_path, redis_db, resolved_first=True) as down:
        assert await down.flag("reopen") is False
        assert await down.flag("resolve") is True
        assert await down.flags() == [RESOLVED, REOPENED, RESOLVED]
        async with down.projector_again():
            assert await down.listed_resolved() == [True]


async def test_threads_of_one_letter_are_flagged_apart(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one thread's resolve is held inside its check (as the wait for a stopped projector
    holds it, up to seconds), another thread of the letter is resolved without waiting for it;
    a second resolve of the held thread waits, then sees the first's event and appends nothing."""
    letter = await collab.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
    held, other = await _thread(collab, letter, 0), await _thread(collab, letter, 1)
    entered, release = asyncio.Event(), asyncio.Event()

    async def holding(c: Any, letter_id: str, thread_id: str, *rest: Any) -> Any:
        if thread_id == held and not entered.is_set():
            entered.set()
            await release.wait()
        return await stored_threads.located(c, letter_id, thread_id, *rest)

    monkeypatch.setattr(resolving, "located", holding)
    first = asyncio.create_task(_flag(collab, letter, held, "resolve"))
    await entered.wait()
    again = asyncio.create_task(_flag(collab, letter, held, "resolve"))
    try:
        # Bounded only so that a lock shared by the letter's threads fails here, not hangs.
        assert await asyncio.wait_for(_flag(collab, letter, other, "resolve"), 5) is True
        assert not again.done()  # the held thread's own lock
    finally:
        release.set()
        responses = await asyncio.gather(first, again)
    assert list(responses) == [True, True]
    assert await _flags(collab, letter) == [RESOLVED] * 2  # one per thread


@pytest.mark.usefixtures("quick_reads")
async def test_repeats_while_no_store_has_folded_are_logged_once(
    tmp_path: Path, redis_db: str
) -> None:
    """The projector is down (no PostgreSQL either): no store reaches the log's end, so only
    this instance's memory of its own appends tells a repeat. A double click logs one resolve;
    resolve, reopen, resolve log three; the projector started again folds the last word."""
    async with _down(tmp_path, redis_db) as down:
        both = await asyncio.gather(*(down.flag("resolve") for _ in range(2)))
        assert both == [True, True]
        assert await down.flags() == [RESOLVED]
        for action, resolved in (("reopen", False), ("reopen", False), ("resolve", True)):
            assert await down.flag(action) is resolved
        assert await down.flags() == [RESOLVED, REOPENED, RESOLVED]
        async with down.projector_again():
            assert await down.listed_resolved() == [True]


@pytest.mark.usefixtures("quick_reads")
@pytest.mark.parametrize("folded", [True, False], ids=["folded", "unfolded"])
async def test_a_change_from_elsewhere_is_not_taken_for_a_repeat(
    tmp_path: Path, redis_db: str, folded: bool
) -> None:
    """This instance resolved the thread while the projector was down; another instance then
    reopened it (appended past set_resolved, as another process would); a resolve here is
    logged, and the thread ends resolved. `folded`: the projector has folded both before, and
    the resolve goes by Redis, not by the memory of its own resolve. Unfolded: no store has the
    reopen, but the log holds it after this instance's resolve (skipping the repeat would answer
    `resolved` and leave the thread open)."""
    async with _down(tmp_path, redis_db) as down:
        assert await down.flag("resolve") is True
        await _reopened_elsewhere(down.c, down.letter, down.threads[0])
        async with down.projector_again() if folded else contextlib.nullcontext():
            assert await down.flag("resolve") is True
            assert await down.flags() == [RESOLVED, REOPENED, RESOLVED]
        async with down.projector_again():
            assert await down.listed_resolved() == [True]


async def _reopened_elsewhere(c: Collab, letter: str, thread: str) -> None:
    """A reopen by another gateway: appended past set_resolved, so this one has no memory of it."""
    elsewhere = c.gw.app.state.collab
    claims = verify_token(c.gw.token(user="u2"), c.gw.settings)
    meta = await elsewhere.letter(claims, letter, comment=True)
    await elsewhere.append(claims, meta, CommentReopened(thread_id=thread))


@pytest.mark.usefixtures("quick_reads")
async def test_the_log_scan_skips_other_threads_and_is_capped(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector is down. A change to another thread of the letter after this instance's
    resolve leaves a repeat skipped; once more records than the scan reads follow the resolve,
    a repeat is logged (the harmless choice) rather than trusted."""
    monkeypatch.setattr(flagged, "MAX_SCAN", 3)
    async with _down(tmp_path, redis_db, threads=2) as down:
        other = down.threads[1]
        assert await down.flag("resolve") is True
        await _reopened_elsewhere(down.c, down.letter, other)
        assert await down.flag("resolve") is True
        assert await down.flags() == [RESOLVED, REOPENED]
        for _ in range(3):
            await _reopened_elsewhere(down.c, down.letter, other)
        assert await down.flag("resolve") is True
        assert await down.flags() == [RESOLVED, *[REOPENED] * 4, RESOLVED]


@pytest.mark.usefixtures("quick_reads")
async def test_two_gateways_in_one_process_remember_their_own_flags(
    tmp_path: Path, redis_db: str
) -> None:
    """Each gateway goes by its own appends only, as two processes would: with the projector
    down, a second gateway on the same log and Redis does not know the first's resolve, so its
    resolve is logged (harmless); its own repeat is not. (One memory per process made the second
    gateway take the first's resolve for its own.)"""
    async with _down(tmp_path, redis_db) as down:
        running = down.running
        async with (
            running_gateway(running.settings, running.log, down.c.redis) as gw,
            httpx.AsyncClient(base_url=gw.http, timeout=10) as http,
        ):
            other = Collab(gw, down.c.redis, http)
            assert await down.flag("resolve") is True
            for _ in range(2):
                assert await down.flag("resolve", c=other) is True
            assert await down.flags() == [RESOLVED, RESOLVED]


@dataclass
class Snapshotted:
    """A letter with one thread in Redis; the projector holds its commits (down) from here, and
    `flag` runs the snapshotter to the log's end after each request (PostgreSQL keeps up)."""

    c: Collab
    dsn: str
    letter: str
    thread: str

    async def flag(self, action: str) -> bool:
        resolved = await _flag(self.c, self.letter, self.thread, action)
        await stack.snapshot(self.c, self.dsn)
        return resolved

    async def flags(self) -> list[str]:
        return await _flags(self.c, self.letter)


@contextlib.asynccontextmanager
async def _snapshotted(
    tmp_path: Path, redis_db: str, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Snapshotted]:
    await migrate(dsn)
    hold = Hold(monkeypatch)
    async with stack.services(tmp_path, redis_db, dsn) as c:
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        thread = await _thread(c, letter)
        await caught_up(c.gw.log, c.gw.settings, c.redis)  # Redis holds it, open
        await stack.snapshot(c, dsn)
        hold.gate.clear()
        try:
            yield Snapshotted(c, dsn, letter, thread)
        finally:
            hold.gate.set()


@pytest.mark.usefixtures("quick_reads")
async def test_repeats_are_logged_once_while_only_postgresql_folds(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector is down, the snapshotter folds on: PostgreSQL has this gateway's resolve,
    Redis the thread as it was before it (open). A repeat is still logged once. (The gateway
    forgot its own resolve once PostgreSQL had it, then went by Redis' stale copy.)"""
    async with _snapshotted(tmp_path, redis_db, pg_database, monkeypatch) as down:
        for _ in range(3):
            assert await down.flag("resolve") is True
        assert await down.flags() == [RESOLVED]
        for action, resolved in (("reopen", False), ("reopen", False), ("resolve", True)):
            assert await down.flag(action) is resolved
        assert await down.flags() == [RESOLVED, REOPENED, RESOLVED]


@pytest.mark.usefixtures("quick_reads")
@pytest.mark.parametrize("snapshotted", [True, False], ids=["snapshotted", "not-yet"])
async def test_a_reopen_elsewhere_after_postgresql_folded_ours_is_kept(
    tmp_path: Path,
    redis_db: str,
    pg_database: str,
    monkeypatch: pytest.MonkeyPatch,
    snapshotted: bool,
) -> None:
    """As above; another gateway reopens the thread after PostgreSQL has this one's resolve
    (folded by the snapshotter, or not yet): a resolve here is logged."""
    async with _snapshotted(tmp_path, redis_db, pg_database, monkeypatch) as down:
        assert await down.flag("resolve") is True
        await _reopened_elsewhere(down.c, down.letter, down.thread)
        if snapshotted:
            await stack.snapshot(down.c, down.dsn)
        assert await _flag(down.c, down.letter, down.thread, "resolve") is True
        assert await down.flags() == [RESOLVED, REOPENED, RESOLVED]


@pytest.mark.usefixtures("quick_reads")
@pytest.mark.parametrize("who", ["another-gateway", "memory-lapsed"])
async def test_a_repeat_without_memory_goes_by_postgresql_at_the_end(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    """As above, with no memory of the resolve to go by: another gateway repeats it, or this
    one after its memory lapsed (TTL_S). Redis' first read (open) is stale; PostgreSQL, folded
    to the log's end, says resolved: nothing is logged (the first read's word appended it)."""
    async with _snapshotted(tmp_path, redis_db, pg_database, monkeypatch) as down:
        assert await down.flag("resolve") is True
        gw = down.c.gw
        if who == "memory-lapsed":
            gw.app.state.collab.ctx.flagged.forget(down.letter, down.thread)
            assert await down.flag("resolve") is True
        else:
            pg = gw.app.state.collab.ctx.pg
            async with (
                running_gateway(gw.settings, gw.log, down.c.redis, pg) as other,
                httpx.AsyncClient(base_url=other.http, timeout=10) as http,
            ):
                again = Collab(other, down.c.redis, http)
                assert await _flag(again, down.letter, down.thread, "resolve") is True
        assert await down.flags() == [RESOLVED]


@pytest.mark.usefixtures("quick_reads")
async def test_a_double_click_while_a_colleague_types_is_logged_once(
    tmp_path: Path, redis_db: str, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector down, the snapshotter folding: PostgreSQL has the first click's resolve,
    Redis the thread open, and a co-author's keystroke keeps PostgreSQL from the log's end.
    The memory was dropped once PostgreSQL had the record; the second click read Redis' "open"
    and found no store at the end: logged twice."""
    async with _snapshotted(tmp_path, redis_db, pg_database, monkeypatch) as down:
        assert await down.flag("resolve") is True  # the snapshotter folds it
        editor = await down.c.gw.client(down.letter)
        await editor.synced.wait()
        before = len(await down.c.gw.records(Topic.LETTERS, down.letter))
        await editor.insert("x")

        async def logged() -> bool:
            return len(await down.c.gw.records(Topic.LETTERS, down.letter)) > before

        await eventually(logged)  # past the snapshotter's position
        assert await _flag(down.c, down.letter, down.thread, "resolve") is True
        await editor.close()
        assert await down.flags() == [RESOLVED]
