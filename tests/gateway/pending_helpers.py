"""Updates that wait on one another, logging one as another writer would (bypassing the
gateway's checks), and a raw y-websocket client's sync messages: tests of what a letter holds
pending (holes in a client's clocks, deletions of clocks it never gets)."""

import asyncio
from collections.abc import Callable
from typing import Any

import websockets
from pycrdt import Doc, Text, write_var_uint

from eventlog.records import Entry
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.support import eventually

STEP1, STEP2 = b"\x00\x00", b"\x00\x01"
PROBE = b"\x00\x00\x01\x00"  # a step 1 with an empty state vector: answered with a step 2


def chained_edits(*texts: str) -> list[bytes]:
    """One update per text, each appended by the same Yjs client: each builds on the last."""
    doc: Doc[Any] = Doc()
    text = doc.get("text", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for value in texts:
        text += value
    return updates


async def log_update(gw: Running, letter: str, update: bytes) -> None:
    """`update` appended to the letter's log directly, as a service writer's."""
    ctx = gw.app.state.gateway.ctx
    entry: Entry = ctx.entry(letter, update, firm="firm-a", user="svc", type="doc.update")
    await gw.log.append(gw.settings.topic(Topic.LETTERS), letter.encode(), [entry])


def as_step2(update: bytes) -> bytes:
    return STEP2 + write_var_uint(len(update)) + update


def text_edits(doc: Doc[Any], *changes: Callable[[Text], None]) -> list[bytes]:
    """One update per change of the doc's "text"."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for change in changes:
        change(doc.get("text", type=Text))
    doc.unobserve(sub)
    return updates


def at_end(value: str) -> Callable[[Text], None]:
    return lambda text: text.insert(len(text), value)


def at(index: int, value: str) -> Callable[[Text], None]:
    return lambda text: text.insert(index, value)


async def recv_until(ws: Any, prefix: bytes) -> tuple[bytes, list[bytes]]:
    """The first message starting with `prefix`, and the messages before it."""
    before: list[bytes] = []
    async with asyncio.timeout(10):
        while (message := await ws.recv())[: len(prefix)] != prefix:
            before.append(message)
    return message, before


async def no_step1_before_probe(ws: Any) -> None:
    """Our answer to a probe comes after anything the messages sent before it made us send."""
    await ws.send(PROBE)
    _, before = await recv_until(ws, STEP2)
    assert [m for m in before if m[:2] == STEP1] == []


async def greeted(gw: Running, letter: str, user: str) -> Any:
    """A raw y-websocket client that answered our greeting (it has nothing of its own)."""
    ws = await websockets.connect(gw.ws_url(letter, gw.token(user=user)), max_size=None)
    assert (await ws.recv())[:2] == STEP1
    await ws.send(as_step2(b"\x00\x00"))
    return ws


async def letter_with_bob(gw: Running) -> tuple[str, YClient, Doc[Any]]:
    """A letter Bob wrote "Dear Sir," in, and a doc of Alice's that has it."""
    letter = await gw.create_letter()
    bob = await gw.client(letter, user="bob")
    await bob.synced.wait()
    heard = len(bob.updates)
    await bob.insert("Dear Sir,")
    await eventually(lambda: len(bob.updates) > heard)  # its echo: logged
    alice: Doc[Any] = Doc()
    alice.apply_update(bob.doc.get_update())
    return letter, bob, alice
