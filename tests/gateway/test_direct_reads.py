"""Under uvicorn, messages are handled as the socket's data is parsed (gateway/transport.py,
READ_DIRECT), not through ASGI's queue. A message waiting on the claim of a new Yjs client id
holds the messages after it, with the socket paused, and they follow it in order."""

import asyncio
import gc
import types
import warnings
from typing import Any

import pytest
from pycrdt import Doc, Text, create_update_message

from gateway.live.connection import Connection
from gateway.live.ownership import Ownership
from gateway.transport import READ_DIRECT
from schemas.events import Topic
from tests.gateway.harness import Running, types_of
from tests.support import eventually


def connection_of(gw: Running, user: str) -> Connection:
    conns = [c for c in gw.app.state.gateway.conns if c.claims.sub == user]
    assert len(conns) == 1
    return conns[0]


def protocol_of(conn: Connection) -> Any:
    """uvicorn's protocol for this connection: its pause is a method of it."""
    assert isinstance(conn._pause_reading, types.MethodType)
    return conn._pause_reading.__self__


async def test_messages_arrive_by_the_direct_read_path(gw: Running) -> None:
    """After a uvicorn upgrade that removed what it needs, this fails rather than silently
    slowing down (the ASGI path still works, and is what other servers get)."""
    letter = await gw.create_letter()
    a = await gw.client(letter, user="alice")
    await a.synced.wait()
    conn = connection_of(gw, "alice")
    assert conn._extensions.get(READ_DIRECT) is not None
    socket = protocol_of(conn)
    await a.insert("hello")
    await eventually(lambda: len(a.updates) >= 2)  # the echo: handled and logged
    assert socket.queue.empty() and not socket.read_paused
    await a.close()


async def test_messages_behind_a_claim_wait_for_it_in_order(
    gw: Running, monkeypatch: pytest.MonkeyPatch, read_path: str
) -> None:
    held, claiming = asyncio.Event(), asyncio.Event()
    resolve = Ownership.resolve

    async def slow_resolve(self: Ownership, clients: list[int], user: str) -> None:
        claiming.set()
        await held.wait()  # Redis taking its time
        await resolve(self, clients, user)

    monkeypatch.setattr(Ownership, "resolve", slow_resolve)
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    bob = await gw.client(letter, user="bob")
    await alice.synced.wait()
    await bob.synced.wait()
    conn = connection_of(gw, "alice")
    assert (READ_DIRECT in conn._extensions) == (read_path == "direct")

    first = await alice.insert("one")  # Alice's client id is new: its claim waits
    await claiming.wait()
    second = await alice.insert(" two")
    if read_path == "direct":
        socket = protocol_of(conn)
        await eventually(lambda: len(conn._inbox) == 1)
        assert socket.read_paused  # nothing more is read while it waits
    assert str(bob.text) == ""  # neither update was handled
    assert "doc.update" not in types_of(await gw.records(Topic.LETTERS, letter))

    held.set()
    await eventually(lambda: str(bob.text) == "one two")
    assert not conn._inbox

    async def logged() -> list[bytes] | None:
        # Peers hear an update as it is queued for the log, before it is appended.
        records = await gw.records(Topic.LETTERS, letter)
        found = [r.value for r in records if types_of([r]) == ["doc.update"]]
        return found if len(found) >= len(first) + len(second) else None

    assert await eventually(logged) == [*first, *second]  # logged in the order sent
    await alice.insert("!")  # and reading goes on
    await eventually(lambda: str(bob.text) == "one two!")
    await alice.close()
    await bob.close()


async def test_a_claim_cancelled_before_it_began_leaves_nothing_unawaited(gw: Running) -> None:
    """The connection ended (its `serve` cancels what waits) before the claim's task first ran:
    the claim, created for the task, is closed with it, not left to the garbage collector's
    "never awaited" warning (CI failed once on it, in a Hocuspocus test)."""
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    await alice.synced.wait()
    conn = connection_of(gw, "alice")
    assert conn._room is not None
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    with doc.new_transaction():
        text += "hi"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn._run(conn._room, create_update_message(doc.get_update()))  # a new client id
        waiting = conn._waiting
        assert waiting is not None  # its claim waits in a task
        waiting.cancel()  # as `serve` does when the connection ends first
        await asyncio.gather(waiting, return_exceptions=True)
        conn._waiting = waiting = None  # the task is gone: the claim with it
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    # Cancelled mid-life (as only a connection's end does), it holds what the task would have
    # released: the client goes without a close handshake.
    alice.ws.transport.abort()
    await alice.closed.wait()
