"""The WebSocket app channel: commands from opted-in clients, live broadcast, notices; presence."""

from typing import Any

from pycrdt import Awareness, Doc, XmlFragment

from gateway.collab.channel import MAX_IN_FLIGHT
from tests.collab.channel_helpers import app, seen
from tests.collab.conftest import Collab
from tests.support import eventually


async def test_commands_and_broadcast(collab: Collab) -> None:
    lid = await collab.gw.create_letter("Dear Sir,\nPay now.")
    alice = await collab.gw.client(lid, user="alice", name="Alice", events=1)
    bob = await collab.gw.client(lid, user="bob", name="Bob", role="commenter", events=1)
    stock = await collab.gw.client(lid, user="carol")  # no &events=1: never hears app messages
    for client in (alice, bob, stock):
        await client.synced.wait()
    command = {
        "type": "comment.create",
        "id": "r1",
        "body": "why?",
        "anchor": {"from": 10, "to": 13},
    }
    await alice.ws.send(app(command))
    result = await seen(alice, "result", id="r1")
    thread_id = result["result"]["thread_id"]
    created = await seen(bob, "comment.created", thread_id=thread_id)
    assert created["by"] == "alice" and created["anchor"]["quote"] == "Pay"

    await bob.ws.send(
        app({"type": "comment.reply", "id": "r2", "thread_id": thread_id, "body": "ok"})
    )
    await seen(bob, "result", id="r2")
    await seen(alice, "comment.replied", thread_id=thread_id)
    await bob.ws.send(app({"type": "lock.acquire", "id": "r3", "section": "intro"}))
    refused = await seen(bob, "error", id="r3")
    assert refused["status"] == 403  # commenters do not lock
    await alice.ws.send(app({"type": "lock.acquire", "id": "r4", "section": "intro"}))
    await seen(bob, "lock.acquired", section="intro")
    await bob.ws.send(app({"type": "comment.list", "id": "r5"}))
    listed = await seen(bob, "result", id="r5")
    assert [len(t["comments"]) for t in listed["result"]["threads"]] == [2]
    await bob.ws.send(app({"type": "nope", "id": "r6"}))
    assert (await seen(bob, "error", id="r6"))["status"] == 422
    await bob.ws.send(app({"type": "typing"}))
    assert (await seen(alice, "typing"))["user"]["id"] == "bob"
    assert not any(m.get("type") == "typing" for m in bob.app)  # not to oneself
    assert stock.app == []
    for client in (alice, bob, stock):
        await client.close()


async def test_presence_and_section_edited(collab: Collab) -> None:
    lid = await collab.gw.create_letter("One\nTwo")
    alice = await collab.gw.client(lid, user="alice", name="Alice", events=1)
    await alice.synced.wait()
    await alice.set_awareness(Awareness(alice.doc), {"cursor": None, "status": "typing"})
    bob = await collab.gw.client(lid, user="bob", name="Bob")
    await bob.synced.wait()

    async def both() -> list[Any] | None:
        r = await collab.call("GET", f"/v1/letters/{lid}/presence", role="viewer")
        users = r.json()["users"]
        return users if len(users) == 2 else None

    users = {u["id"]: u for u in await eventually(both, timeout=10)}
    assert users["alice"]["name"] == "Alice" and users["alice"]["color"].startswith("#")
    assert users["alice"]["status"] in ("typing", "active") and users["bob"]["status"] == "active"
    assert users["bob"]["lastActivity"] > 0
    r = await collab.call("GET", f"/v1/letters/{lid}/presence", firm="firm-b")
    assert r.status_code == 403

    def edit(doc: Doc[Any]) -> None:
        line = doc.get("default", type=XmlFragment).children[1].children[0]
        line.insert(0, "Bob: ")

    await bob.edit(edit)
    channel = collab.gw.app.state.gateway.ctx.app_messages.__self__

    async def announced() -> dict[str, Any] | None:
        await channel.recent_once()
        edited = (m for m in alice.app if m.get("type") == "section.edited")
        return next((m for m in edited if m["user"]["id"] == "bob"), None)

    notice = await eventually(announced, timeout=10)
    assert notice["section"] == "1" and notice["user"]["name"] == "Bob"
    assert lid in channel._recent
    await alice.close()
    await bob.close()
    room = collab.gw.app.state.gateway.rooms.get(lid)
    await eventually(lambda: room is None or not room.conns)
    await channel.recent_once()
    assert lid not in channel._recent  # nobody listens: its view of the letter is dropped


async def test_commands_in_flight_are_bounded_per_connection(collab: Collab) -> None:
    """Each command is a task that may wait on the projector: a connection firing them faster
    than they finish gets 429s beyond a few at once, and every request gets its answer."""
    lid = await collab.gw.create_letter("Dear Sir,\nPay now.")
    alice = await collab.gw.client(lid, user="alice", name="Alice", events=1)
    await alice.synced.wait()
    for n in range(30):  # back to back: far faster than the lists are served
        await alice.ws.send(app({"type": "comment.list", "id": f"q{n}"}))

    def answers() -> list[dict[str, Any]]:
        return [m for m in alice.app if str(m.get("id", "")).startswith("q")]

    await eventually(lambda: len(answers()) == 30, timeout=10)
    busy = [m for m in answers() if m["type"] == "error"]
    assert busy and all(m["status"] == 429 for m in busy)
    assert len(busy) <= 30 - MAX_IN_FLIGHT  # at least as many as may run at once were served
    await alice.ws.send(app({"type": "comment.list", "id": "after"}))  # nothing left counted
    assert (await seen(alice, "result", id="after"))["result"] == {"threads": []}
    await alice.close()
