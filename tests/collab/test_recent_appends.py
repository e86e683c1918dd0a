"""The letters an instance appended to lately (for a notifications read to wait for,
gateway/collab/shared.py) are pruned as they are written: the map stays bounded on an instance
nobody reads notifications from."""

import asyncio
from pathlib import Path

import pytest

from gateway.collab import shared
from tests.collab.conftest import Collab, unprojected_on


async def _comment(c: Collab, letter: str) -> None:
    body = {"body": "note", "anchor": {"from": 0, "to": 5}}
    r = await c.call("POST", f"/v1/letters/{letter}/comments", json=body)
    assert r.status_code == 201, r.text


async def test_appends_older_than_the_window_are_forgotten_without_a_read(
    collab: Collab, monkeypatch: pytest.MonkeyPatch
) -> None:
    letters = [await collab.gw.create_letter("Alpha beta") for _ in range(20)]
    appended_at = collab.gw.app.state.collab._appended_at
    for letter in letters[:3]:
        await _comment(collab, letter)
    assert list(appended_at) == letters[:3]  # within the window: kept, for the next read
    monkeypatch.setattr(shared, "RECENT_APPENDS_S", 0.0)  # every earlier append is now old
    for letter in letters[3:]:
        await _comment(collab, letter)  # and no GET /v1/notifications
    assert list(appended_at) == letters[-1:]


async def test_a_read_waits_only_for_its_own_firms_comments(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No projector runs: a notifications read waits (up to CATCH_UP_S) for comments this
    instance appended. Before, it waited for every letter appended to, whatever its firm or
    event (a lock), polling Redis per letter."""
    monkeypatch.setattr(shared, "CATCH_UP_S", 60.0)
    async with unprojected_on(tmp_path, redis_db) as c:
        theirs = await c.gw.create_letter("Alpha beta", firm="firm-a")
        ours = await c.gw.create_letter("Gamma delta", firm="firm-b")
        await _comment(c, theirs)
        r = await c.call("POST", f"/v1/letters/{ours}/locks/damages", firm="firm-b")
        assert r.status_code == 200, r.text
        appended_at = c.gw.app.state.collab._appended_at
        assert list(appended_at) == [theirs]  # a lock changes nobody's notifications
        # Would wait the 60 s for the other firm's comment, unprojected.
        r = await asyncio.wait_for(
            c.call("GET", "/v1/notifications", user="bob", firm="firm-b"), 10
        )
        # At once, and 503: the log has records in partitions no projector folded (README
        # "Notifications": the hash may hold none of them).
        assert r.status_code == 503, r.text
