"""Malformed lock sections and comment commands get a 422 that says what is wrong with them."""

from pathlib import Path
from typing import Any

import pytest

from gateway.collab import locks
from gateway.restored import RETRY_S
from schemas.keys import RESTORED
from tests.collab.channel_helpers import app, seen
from tests.collab.conftest import Collab, collab_on
from tests.collab.lock_rebuild import lock_events


async def test_a_section_is_one_line_of_printable_text(collab: Collab) -> None:
    lid = await collab.gw.create_letter("x")
    base = f"/v1/letters/{lid}/locks"
    refused = {
        "%20": "section is blank",
        "%20%09": "section is blank",
        "x%00y": "section must be one line of printable characters",
        "%E2%80%AE": "section must be one line of printable characters",  # U+202E alone
        "a%E2%80%AEb": "section must be one line of printable characters",
        "a%0Ab": "section must be one line of printable characters",
    }
    for section, detail in refused.items():
        r = await collab.call("POST", f"{base}/{section}", user="al")
        assert (r.status_code, r.json()["detail"]) == (422, detail), section
    assert (await collab.call("POST", f"{base}/Intro%20%C3%A9t%C3%A9", user="al")).is_success
    r = await collab.call("GET", base, user="al")
    assert [lock["section"] for lock in r.json()["locks"]] == ["Intro été"]

    client = await collab.gw.client(lid, user="al", events=1)
    await client.synced.wait()
    await client.ws.send(app({"type": "lock.acquire", "id": "l1", "section": "\u202e"}))
    error = await seen(client, "error", id="l1")
    assert (error["status"], error["detail"]) == (
        422,
        "section must be one line of printable characters",
    )
    await client.close()


async def test_comment_commands_name_what_is_wrong(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Dear Sir,\nPay now.")
    path = f"/v1/letters/{lid}/comments"
    for anchor, detail in [
        ({"from": 3, "to": 3}, "anchor [3, 3) is empty: to must be greater than from"),
        ({"from": 8, "to": 2}, "anchor [8, 2) ends before it starts"),
        ({"from": 0, "to": 10**6}, "anchor [0, 1000000) is outside the text (length 18)"),
    ]:
        r = await collab.call("POST", path, user="al", json={"body": "b", "anchor": anchor})
        assert (r.status_code, r.json()["detail"]) == (422, detail), anchor

    client = await collab.gw.client(lid, user="al", events=1)
    await client.synced.wait()
    commands: list[tuple[dict[str, Any], str]] = [
        ({"type": "comment.edit", "thread_id": 1, "comment_id": "c"}, "thread_id must be a string"),
        (
            {"type": "comment.edit", "thread_id": "t", "comment_id": []},
            "comment_id must be a string",
        ),
        ({"type": "comment.reply", "body": "b"}, "thread_id is required"),
        ({"type": "comment.resolve", "thread_id": ""}, "thread_id is required"),
        ({"type": "lock.acquire", "section": None}, "section is required"),
    ]
    for n, (command, detail) in enumerate(commands):
        await client.ws.send(app({**command, "id": f"c{n}"}))
        error = await seen(client, "error", id=f"c{n}")
        assert (error["status"], error["detail"]) == (422, detail), command
    await client.close()


async def test_a_section_granted_before_the_rule_tightened_is_still_renewed_and_released(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A section granted before a deploy refused its characters (U+034F since 2026-12-07) is
    renewed and freed by its holder, not refused with 422 until its TTL ends (the renewal was:
    the lock lapsed under a holder still editing). A new grant of that name is refused."""
    lid = await collab.gw.create_letter("x")
    path = f"/v1/letters/{lid}/locks/a%CD%8Fb"  # "a\u034fb"
    monkeypatch.setattr(locks, "problem", lambda text: None)  # the rule before
    assert (await collab.call("POST", path, user="al")).is_success
    monkeypatch.undo()
    r = await collab.call("POST", path, user="al")  # its holder renews it
    assert r.status_code == 200, r.text
    r = await collab.call("POST", path, user="bo")  # a new grant, to anyone: 422, not 409
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "section must be one line of printable characters",
    )
    r = await collab.call("DELETE", path, user="al")
    assert r.status_code == 200, r.text
    assert await lock_events(collab, lid) == [
        ("lock.acquired", "a\u034fb", "al"),
        ("lock.acquired", "a\u034fb", "al"),
        ("lock.released", "a\u034fb", "al"),
    ]
    r = await collab.call("POST", path, user="al")
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "section must be one line of printable characters",
    )
    assert (await collab.call("DELETE", path, user="al")).status_code == 404
    r = await collab.call("DELETE", f"/v1/letters/{lid}/locks/A", user="viewer-v", role="viewer")
    assert r.status_code == 403


async def test_a_grandfathered_section_lost_with_redis_is_503_not_422(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis lost its data (the lock and the restored marker gone) under a lock of a name the
    rule now refuses: its holder's renewal answers 503 as for any name (the restore brings the
    lock back), not the name's 422, on which the web client drops the lock for good."""
    async with collab_on(tmp_path, redis_db, locks_auto_restore=False) as collab:
        lid = await collab.gw.create_letter("x")
        path = f"/v1/letters/{lid}/locks/a%CD%8Fb"  # "a\u034fb"
        monkeypatch.setattr(locks, "problem", lambda text: None)  # the rule before
        assert (await collab.call("POST", path, user="al")).is_success
        monkeypatch.undo()
        await collab.redis.delete(locks.key_of(lid, "a\u034fb"), RESTORED)  # a wipe
        r = await collab.call("POST", path, user="al")
        assert (r.status_code, r.headers.get("Retry-After")) == (503, str(RETRY_S)), r.text
