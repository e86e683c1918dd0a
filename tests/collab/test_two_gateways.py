"""The app channel across two gateway instances on Kafka (Tansu): comment and lock events reach
collaborators on the other instance through its log tail; locks are exclusive across both."""

import json
from typing import Any

import httpx

from tests.collab.channel_helpers import app, seen
from tests.gateway.harness import Running


async def test_comment_and_lock_events_cross_instances(pair: tuple[Running, Running]) -> None:
    a, b = pair
    letter = await a.create_letter("Dear Sir,\nPay now.")
    alice = await a.client(letter, user="alice", name="Alice", events=1)
    bob = await b.client(letter, user="bob", name="Bob", events=1)
    await alice.synced.wait()
    await bob.synced.wait()
    command: dict[str, Any] = {"type": "comment.create", "id": "c1", "body": "hm @bob"}
    command |= {"anchor": {"from": 10, "to": 13}, "mentions": ["bob"]}
    await alice.ws.send(app(command))
    created = await seen(bob, "comment.created")  # through b's tail
    assert created["by"] == "alice" and created["author"]["name"] == "Alice"
    assert created["mentions"] == ["bob"] and created["anchor"]["quote"] == "Pay"

    # A keyed comment's claim hashes go to the log (restored from it), not to collaborators.
    async with httpx.AsyncClient(base_url=a.http) as http:
        keyed = await http.post(
            f"/v1/letters/{letter}/comments",
            json={"body": "keyed", "anchor": {"from": 0, "to": 4}},
            headers={"Authorization": f"Bearer {a.token('alice')}", "Idempotency-Key": "k-1"},
        )
    assert keyed.status_code == 201, keyed.text
    here = await seen(alice, "comment.created", body="keyed")  # a's own notice
    there = await seen(bob, "comment.created", body="keyed")  # through b's tail
    assert "idempotency" not in here and "idempotency" not in there
    assert here == there

    await bob.ws.send(app({"type": "lock.acquire", "id": "l1", "section": "intro"}))
    assert (await seen(bob, "result", id="l1"))["result"]["holder"]["id"] == "bob"
    await seen(alice, "lock.acquired", section="intro")
    await alice.ws.send(app({"type": "lock.acquire", "id": "l2", "section": "intro"}))
    refused = await seen(alice, "error", id="l2")  # the Redis key is shared by both
    assert refused["status"] == 409 and refused["locked_by"] == {"id": "bob", "name": "Bob"}
    await bob.ws.send(app({"type": "lock.release", "id": "l3", "section": "intro"}))
    await seen(alice, "lock.released", section="intro")
    assert json.dumps(alice.app).count("lock.acquired") == 1
    await alice.close()
    await bob.close()


async def test_mention_notice_reaches_another_instance(pair: tuple[Running, Running]) -> None:
    a, b = pair
    letter, other = await a.create_letter("Pay now."), await b.create_letter("Elsewhere")
    alice = await a.client(letter, user="alice", name="Alice", events=1)
    carol = await b.client(other, user="carol", events=1)  # another letter, another instance
    await alice.synced.wait()
    await carol.synced.wait()
    command = {"type": "comment.create", "id": "m1", "body": "@carol?", "mentions": ["carol"]}
    await alice.ws.send(app({**command, "anchor": {"from": 0, "to": 3}}))
    notice = await seen(carol, "notification")
    assert notice["letter_id"] == letter and notice["author"] == {"id": "alice", "name": "Alice"}
    assert notice["body"] == "@carol?"
    await alice.close()
    await carol.close()
