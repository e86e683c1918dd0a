"""The letters an instance appended to lately (for a notifications read to wait for,
gateway/collab/shared.py) are pruned as they are written: the map stays bounded on an instance
nobody reads notifications from."""

import pytest

from gateway.collab import shared
from tests.collab.conftest import Collab


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
