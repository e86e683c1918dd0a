"""Mentions become notifications: listed newest first with unread counts, marked read through
the log, and delivered live to mentioned users connected to any letter."""

from typing import Any

from schemas.events import Topic
from schemas.keys import notes_key
from tests.collab.channel_helpers import seen
from tests.collab.conftest import Collab
from tests.gateway.harness import types_of


async def _mine(c: Collab, user: str, firm: str = "firm-a") -> dict[str, Any]:
    r = await c.call("GET", "/v1/notifications", user=user, role="commenter", firm=firm)
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
    live = await seen(elsewhere, "notification")  # connected to another letter
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


def _notices(client: Any) -> list[dict[str, Any]]:
    return [m for m in client.app if m.get("type") == "notification"]


async def test_a_mention_of_another_firms_user_reaches_nobody(collab: Collab) -> None:
    """User ids are the identity provider's: a comment may name any id, and a user of another
    firm who has it must not see the comment, live or listed, nor be kept from marking their
    own notifications read."""
    ours = await collab.gw.create_letter("Alpha beta")
    theirs = await collab.gw.create_letter("Gamma delta", firm="firm-b")
    bob_b = await collab.gw.client(theirs, user="bob", firm="firm-b", events=1)
    carol = await collab.gw.client(ours, user="carol", role="commenter", events=1)
    await bob_b.synced.wait()
    await carol.synced.wait()
    body = {"body": "settle at 90000?", "anchor": {"from": 0, "to": 5}, "mentions": ["bob"]}
    r = await collab.call("POST", f"/v1/letters/{ours}/comments", user="alice", json=body)
    assert r.status_code == 201
    cross = r.json()["comment_id"]
    body = {**body, "body": "and carol", "mentions": ["bob", "carol"]}
    r = await collab.call("POST", f"/v1/letters/{ours}/comments", user="alice", json=body)
    assert (await seen(carol, "notification"))["body"] == "and carol"
    # A mention within firm-b comes later on bob's socket: anything sent before it is there too.
    body = {"body": "@bob yours", "anchor": {"from": 0, "to": 5}, "mentions": ["bob"]}
    r = await collab.call(
        "POST", f"/v1/letters/{theirs}/comments", user="dana", firm="firm-b", json=body
    )
    assert r.status_code == 201
    await seen(bob_b, "notification", letter_id=theirs)
    assert [n["body"] for n in _notices(bob_b)] == ["@bob yours"]

    r = await collab.call("GET", "/v1/notifications", user="bob", firm="firm-b")
    listed = r.json()["notifications"]
    assert [n["body"] for n in listed] == ["@bob yours"] and r.json()["unread"] == 1
    assert listed[0]["firm_id"] == "firm-b"
    assert all(n["comment_id"] != cross for n in listed)
    r = await collab.call(
        "POST", "/v1/notifications/read", user="bob", firm="firm-b", json={"all": True}
    )
    assert r.status_code == 200 and r.json()["marked"] == 1
    await bob_b.close()
    await carol.close()


async def test_a_mention_longer_than_a_user_id_is_refused(collab: Collab) -> None:
    """A user id is at most 256 characters (`UserRef.id`); the letters topic is kept forever."""
    letter = await collab.gw.create_letter("Alpha beta")
    path = f"/v1/letters/{letter}/comments"
    body = {"body": "hi", "anchor": {"from": 0, "to": 5}, "mentions": ["b" * 257]}
    r = await collab.call("POST", path, user="alice", json=body)
    assert r.status_code == 422 and "mentions" in r.json()["detail"]
    r = await collab.call("POST", path, user="alice", json={**body, "mentions": ["b" * 256]})
    assert r.status_code == 201
    thread = r.json()["thread_id"]
    r = await collab.call(
        "POST",
        f"{path}/{thread}/replies",
        user="alice",
        json={"body": "x", "mentions": ["c" * 300]},
    )
    assert r.status_code == 422
    assert types_of(await collab.gw.records(Topic.LETTERS, letter)).count("comment.created") == 1


async def test_an_edit_notifies_live_those_it_newly_mentions(collab: Collab) -> None:
    letter = await collab.gw.create_letter("Alpha beta")
    bob = await collab.gw.client(letter, user="bob", role="commenter", events=1)
    carol = await collab.gw.client(letter, user="carol", role="commenter", events=1)
    await bob.synced.wait()
    await carol.synced.wait()
    path = f"/v1/letters/{letter}/comments"
    body = {"body": "@bob look", "anchor": {"from": 0, "to": 5}, "mentions": ["bob"]}
    r = await collab.call("POST", path, user="alice", json=body)
    thread, comment = r.json()["thread_id"], r.json()["comment_id"]
    await seen(bob, "notification", comment_id=comment)
    edit = {"body": "@bob @carol look", "mentions": ["bob", "carol"]}
    r = await collab.call("PATCH", f"{path}/{thread}/{comment}", user="alice", json=edit)
    assert r.status_code == 200, r.text
    notice = await seen(carol, "notification", comment_id=comment)
    assert notice["body"] == "@bob @carol look" and notice["author"]["id"] == "alice"
    # bob was notified when first mentioned: the edit tells him nothing new.
    reply = {"body": "@bob again", "mentions": ["bob"]}
    r = await collab.call("POST", f"{path}/{thread}/replies", user="alice", json=reply)
    await seen(bob, "notification", body="@bob again")
    assert [n["body"] for n in _notices(bob)] == ["@bob look", "@bob again"]
    await bob.close()
    await carol.close()


async def test_a_mention_of_another_firms_user_leaves_their_hash_alone(collab: Collab) -> None:
    """The hash is the firm's user's (`notifications:<firm>:<user>`): another firm's mentions,
    10 KB each, are never read by their GET. Firm ids may hold ':', escaped in the key."""
    ours = await collab.gw.create_letter("Alpha beta")
    theirs = await collab.gw.create_letter("Gamma delta", firm="acme:b")
    body = {"body": "x" * 10_000, "anchor": {"from": 0, "to": 5}, "mentions": ["bob"]}
    r = await collab.call("POST", f"/v1/letters/{ours}/comments", user="alice", json=body)
    assert r.status_code == 201
    body = {**body, "body": "@bob yours"}
    r = await collab.call(
        "POST", f"/v1/letters/{theirs}/comments", user="dana", firm="acme:b", json=body
    )
    assert r.status_code == 201
    mine = r.json()["comment_id"]

    r = await collab.call("GET", "/v1/notifications", user="bob", firm="acme:b")
    assert [n["body"] for n in r.json()["notifications"]] == ["@bob yours"]
    assert await collab.redis.hkeys("notifications:acme%3Ab:bob") == [f"{theirs}:{mine}".encode()]
    assert await collab.redis.hlen("notifications:firm-a:bob") == 1
    r = await collab.call(
        "POST", "/v1/notifications/read", user="bob", firm="acme:b", json={"all": True}
    )
    assert r.status_code == 200 and r.json()["marked"] == 1
    assert (await _mine(collab, "bob", "acme:b"))["unread"] == 0
    assert (await _mine(collab, "bob"))["unread"] == 1


def test_notes_keys_keep_firms_apart() -> None:
    assert notes_key("a:b", "c") != notes_key("a", "b:c")
    assert "\n" not in notes_key("50%", "x\ny")
