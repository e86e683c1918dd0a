"""Resolving a resolved thread, or reopening an open one, appends nothing: each event is an
audit row kept for good, and a repeat (a retry, a double click) changes nothing."""

import asyncio

from schemas.events import Topic
from tests.collab.conftest import Collab
from tests.gateway.harness import types_of


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
