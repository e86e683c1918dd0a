"""Mentions become notifications: listed newest first with unread counts, marked read through
the log, and delivered live to mentioned users connected to any letter."""

from typing import Any

from schemas.events import Topic
from tests.collab.conftest import Collab
from tests.collab.test_channel import _seen
from tests.gateway.harness import types_of


async def _mine(c: Collab, user: str) -> dict[str, Any]:
    r = await c.call("GET", "/v1/notifications", user=user, role="commenter")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_mentions_notify(collab: Collab) -> None:
    first = await collab.gw.create_letter("Alpha beta")
    second = await collab.gw.create_letter("Gamma delta")
    elsewhere = await collab.gw.client(second, user="bob", role="commenter", events=1)
    await elsewhere.synced.wait()
    body = {"body": "@bob look", "anchor": {"from": 0, "to": 5}, "mentions": ["bob", "carol"]}
    r = await collab.call("POST", f"/v1/letters/{first}/comments", user="alice", json=body)
    assert r.status_code == 201
    thread = r.json()["thread_id"]
    live = await _seen(elsewhere, "notification")  # connected to another letter
    assert live["letter_id"] == first and live["author"] == {"id": "alice", "name": "ALICE"}
    reply = {"body": "@bob again", "mentions": ["bob"]}
    path = f"/v1/letters/{second}/comments"
    r = await collab.call("POST", path, user="alice", json={**body, "mentions": ["bob"]})
    assert r.status_code == 201
    r = await collab.call(
        "POST", f"/v1/letters/{first}/comments/{thread}/replies", user="carol", json=reply
    )
    assert r.status_code == 201

    mine = await _mine(collab, "bob")
    assert mine["unread"] == 3
    listed = mine["notifications"]
    assert [n["body"] for n in listed] == ["@bob again", "@bob look", "@bob look"]
    assert [n["letter_id"] for n in listed] == [first, second, first]  # newest first
    assert listed[0]["author"] == {"id": "carol", "name": "CAROL"}
    assert listed[0]["thread_id"] == thread and listed[0]["read"] is False
    assert (await _mine(collab, "carol"))["unread"] == 1
    assert (await _mine(collab, "alice"))["unread"] == 0  # nobody mentioned alice

    r = await collab.call(
        "POST", "/v1/notifications/read", user="bob", json={"ids": [listed[0]["id"]]}
    )
    assert r.status_code == 200 and r.json()["marked"] == 1
    mine = await _mine(collab, "bob")
    assert mine["unread"] == 2 and mine["notifications"][0]["read"] is True
    assert "notification.read" in types_of(await collab.gw.records(Topic.LETTERS, first))
    r = await collab.call("POST", "/v1/notifications/read", user="bob", json={"all": True})
    assert r.json()["marked"] == 2 and (await _mine(collab, "bob"))["unread"] == 0
    r = await collab.call("POST", "/v1/notifications/read", user="bob", json={"ids": "x"})
    assert r.status_code == 422
    await elsewhere.close()
