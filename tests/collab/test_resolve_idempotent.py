"""Resolving a resolved thread, or reopening an open one, appends nothing: each event is an
audit row kept for good, and a repeat (a retry, a double click) changes nothing."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.auth import verify_token
from gateway.collab import comments, flagged, shared
from schemas.events import CommentReopened, Topic
from tests.collab.conftest import Collab, stoppable_on
from tests.gateway.harness import types_of
from tests.projector.support import caught_up, projector


async def _flags(c: Collab, letter: str) -> list[str]:
    kinds = types_of(await c.gw.records(Topic.LETTERS, letter))
    return [k for k in kinds if k in ("comment.resolved", "comment.reopened")]


async def test_repeated_resolves_and_reopens_append_once(collab: Collab) -> None:
    letter = await collab.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
    made = await collab.call(
        "POST", f"/v1/letters/{letter}/comments", json={"body": "x", "anchor": {"from": 0, "to": 4}}
    )
    assert made.status_code == 201, made.text
    thread = made.json()["thread_id"]
    base = f"/v1/letters/{letter}/comments/{thread}"

    r = await collab.call("POST", base + "/reopen")  # open already
    assert (r.status_code, r.json()) == (200, {"thread_id": thread, "resolved": False})
    assert await _flags(collab, letter) == []

    # At once, as a double click sends them: one is checked after the other's append.
    both = await asyncio.gather(*(collab.call("POST", base + "/resolve") for _ in range(2)))
    assert [(r.status_code, r.json()) for r in both] == [
        (200, {"thread_id": thread, "resolved": True})
    ] * 2
    r = await collab.call("POST", base + "/resolve", user="u2")  # later, by someone else
    assert (r.status_code, r.json()) == (200, {"thread_id": thread, "resolved": True})
    assert await _flags(collab, letter) == ["comment.resolved"]

    for _ in range(2):
        r = await collab.call("POST", base + "/reopen")
        assert (r.status_code, r.json()) == (200, {"thread_id": thread, "resolved": False})
    assert await _flags(collab, letter) == ["comment.resolved", "comment.reopened"]
    threads = (await collab.call("GET", f"/v1/letters/{letter}/comments")).json()["threads"]
    assert [t["resolved"] for t in threads] == [False]


async def _thread(c: Collab, letter: str, at: int = 0) -> str:
    made = await c.call(
        "POST",
        f"/v1/letters/{letter}/comments",
        json={"body": "x", "anchor": {"from": at, "to": 4}},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["thread_id"])


async def test_a_resolve_after_an_unfolded_reopen_is_kept(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector stops after folding a resolve; a reopen is logged, unfolded; a resolve now
    reads "resolved" from the projection: the log's last word is the reopen, so it must append
    (skipping it would answer `resolved` and leave the thread open)."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # the waits for the stopped projector
    async with stoppable_on(tmp_path, redis_db) as running:
        c, settings, log = running.collab, running.settings, running.log
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        base = f"/v1/letters/{letter}/comments/{await _thread(c, letter)}"
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        await caught_up(log, settings, c.redis)
        await running.folding.aclose()  # the projector stops
        for path, resolved in (("/reopen", False), ("/resolve", True)):
            r = await c.call("POST", base + path)
            assert (r.status_code, r.json()["resolved"]) == (200, resolved)
        assert await _flags(c, letter) == [
            "comment.resolved", "comment.reopened", "comment.resolved"
        ]  # fmt: skip
        async with projector(settings, log):
            await caught_up(log, settings, c.redis)
            got = await c.call("GET", f"/v1/letters/{letter}/comments")
            assert [t["resolved"] for t in got.json()["threads"]] == [True]


async def test_threads_of_one_letter_are_flagged_apart(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one thread's resolve is held inside its check (as the wait for a stopped projector
    holds it, up to seconds), another thread of the letter is resolved without waiting for it;
    a second resolve of the held thread waits, then sees the first's event and appends nothing."""
    letter = await collab.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
    held, other = await _thread(collab, letter, 0), await _thread(collab, letter, 1)
    entered, release = asyncio.Event(), asyncio.Event()
    located = comments._located

    async def holding(c: Any, letter_id: str, thread_id: str, *rest: Any) -> Any:
        if thread_id == held and not entered.is_set():
            entered.set()
            await release.wait()
        return await located(c, letter_id, thread_id, *rest)

    monkeypatch.setattr(comments, "_located", holding)
    base = f"/v1/letters/{letter}/comments"
    first = asyncio.create_task(collab.call("POST", f"{base}/{held}/resolve"))
    await entered.wait()
    again = asyncio.create_task(collab.call("POST", f"{base}/{held}/resolve"))
    try:
        # Bounded only so that a lock shared by the letter's threads fails here, not hangs.
        r = await asyncio.wait_for(collab.call("POST", f"{base}/{other}/resolve"), 5)
        assert (r.status_code, r.json()["resolved"]) == (200, True)
        assert not again.done()  # the held thread's own lock
    finally:
        release.set()
        responses = await asyncio.gather(first, again)
    assert [(r.status_code, r.json()["resolved"]) for r in responses] == [(200, True)] * 2
    assert await _flags(collab, letter) == ["comment.resolved"] * 2  # one per thread


async def test_repeats_while_no_store_has_folded_are_logged_once(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector is down (no PostgreSQL either): no store reaches the log's end, so only
    this instance's memory of its own appends tells a repeat. A double click logs one resolve;
    resolve, reopen, resolve log three; the projector started again folds the last word."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)  # the waits for the stopped projector
    async with stoppable_on(tmp_path, redis_db) as running:
        c, settings, log = running.collab, running.settings, running.log
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        base = f"/v1/letters/{letter}/comments/{await _thread(c, letter)}"
        await caught_up(log, settings, c.redis)
        await running.folding.aclose()  # the projector stops
        both = await asyncio.gather(*(c.call("POST", base + "/resolve") for _ in range(2)))
        assert [(r.status_code, r.json()["resolved"]) for r in both] == [(200, True)] * 2
        assert await _flags(c, letter) == ["comment.resolved"]
        for path, resolved in (("/reopen", False), ("/reopen", False), ("/resolve", True)):
            r = await c.call("POST", base + path)
            assert (r.status_code, r.json()["resolved"]) == (200, resolved)
        assert await _flags(c, letter) == [
            "comment.resolved", "comment.reopened", "comment.resolved"
        ]  # fmt: skip
        async with projector(settings, log):
            await caught_up(log, settings, c.redis)
            got = await c.call("GET", f"/v1/letters/{letter}/comments")
            assert [t["resolved"] for t in got.json()["threads"]] == [True]


async def test_a_change_from_elsewhere_wins_once_a_store_has_folded_it(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This instance resolved the thread while the projector was down; another instance then
    reopened it (appended here past set_resolved, as another process would). Once the projector
    has folded both, a resolve here goes by Redis, not by the memory of its own resolve: it is
    logged, and the thread ends resolved."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)
    async with stoppable_on(tmp_path, redis_db) as running:
        c, settings, log = running.collab, running.settings, running.log
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        thread = await _thread(c, letter)
        base = f"/v1/letters/{letter}/comments/{thread}"
        await caught_up(log, settings, c.redis)
        await running.folding.aclose()
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        await _reopened_elsewhere(c, letter, thread)
        async with projector(settings, log):
            await caught_up(log, settings, c.redis)
            r = await c.call("POST", base + "/resolve")
            assert (r.status_code, r.json()["resolved"]) == (200, True)
            assert await _flags(c, letter) == [
                "comment.resolved", "comment.reopened", "comment.resolved"
            ]  # fmt: skip
            await caught_up(log, settings, c.redis)
            got = await c.call("GET", f"/v1/letters/{letter}/comments")
            assert [t["resolved"] for t in got.json()["threads"]] == [True]


async def _reopened_elsewhere(c: Collab, letter: str, thread: str) -> None:
    """A reopen by another gateway: appended past set_resolved, so this one has no memory of it."""
    elsewhere = c.gw.app.state.collab
    claims = verify_token(c.gw.token(user="u2"), c.gw.settings)
    meta = await elsewhere.letter(claims, letter, comment=True)
    await elsewhere.append(claims, meta, CommentReopened(thread_id=thread))


async def test_a_repeat_after_an_unfolded_change_from_elsewhere_is_logged(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector is down: this instance resolves, another reopens, this one resolves again.
    No store has folded the reopen, but the log holds it after this instance's resolve: the
    repeat must be logged (skipping it would answer `resolved` and leave the thread open)."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)
    async with stoppable_on(tmp_path, redis_db) as running:
        c, settings, log = running.collab, running.settings, running.log
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        thread = await _thread(c, letter)
        base = f"/v1/letters/{letter}/comments/{thread}"
        await caught_up(log, settings, c.redis)
        await running.folding.aclose()
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        await _reopened_elsewhere(c, letter, thread)
        r = await c.call("POST", base + "/resolve")
        assert (r.status_code, r.json()["resolved"]) == (200, True)
        assert await _flags(c, letter) == [
            "comment.resolved", "comment.reopened", "comment.resolved"
        ]  # fmt: skip
        async with projector(settings, log):
            await caught_up(log, settings, c.redis)
            got = await c.call("GET", f"/v1/letters/{letter}/comments")
            assert [t["resolved"] for t in got.json()["threads"]] == [True]


async def test_the_log_scan_skips_other_threads_and_is_capped(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projector is down. A change to another thread of the letter after this instance's
    resolve leaves a repeat skipped; once more records than the scan reads follow the resolve,
    a repeat is logged (the harmless choice) rather than trusted."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 0.3)
    monkeypatch.setattr(flagged, "MAX_SCAN", 3)
    async with stoppable_on(tmp_path, redis_db) as running:
        c, settings, log = running.collab, running.settings, running.log
        letter = await c.gw.create_letter("Dear Sir,\nPay 5000 EUR.")
        thread, other = await _thread(c, letter, 0), await _thread(c, letter, 1)
        base = f"/v1/letters/{letter}/comments/{thread}"
        await caught_up(log, settings, c.redis)
        await running.folding.aclose()
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        await _reopened_elsewhere(c, letter, other)
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        assert await _flags(c, letter) == ["comment.resolved", "comment.reopened"]
        for _ in range(3):
            await _reopened_elsewhere(c, letter, other)
        assert (await c.call("POST", base + "/resolve")).status_code == 200
        assert await _flags(c, letter) == [
            "comment.resolved", *["comment.reopened"] * 4, "comment.resolved"
        ]  # fmt: skip
