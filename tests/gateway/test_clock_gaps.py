"""An update past a hole in its client's clocks is never applied, relayed or logged: pycrdt 0.14
integrates it where Yjs holds it pending, and a saved state then reloads as less than the
letter had (docs/contracts.md "Saved Yjs states"). The sender gets our sync step 1 instead,
and a stock client's answer, a step 2 with the hole, is taken (gateway/live/connection.py)."""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import (
    Decoder,
    Doc,
    Text,
    create_sync_message,
    create_update_message,
    merge_updates,
    write_var_uint,
)

from gateway.live import connection
from gateway.wire import hocuspocus as hp
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.gateway.hocuspocus_client import HpClient
from tests.support import eventually

STEP1, STEP2 = b"\x00\x00", b"\x00\x01"
PROBE = b"\x00\x00\x01\x00"  # a step 1 with an empty state vector: answered with a step 2


def _step2(update: bytes) -> bytes:
    return STEP2 + write_var_uint(len(update)) + update


def _vector(step1: bytes) -> bytes:
    decoder = Decoder(step1)
    decoder.read_var_uint(), decoder.read_var_uint()
    return decoder.read_message() or b""


def _edits(doc: Doc[Any], *changes: Callable[[Text], None]) -> list[bytes]:
    """One update per change of the doc's "text"."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for change in changes:
        change(doc.get("text", type=Text))
    doc.unobserve(sub)
    return updates


def _at_end(value: str) -> Callable[[Text], None]:
    return lambda text: text.insert(len(text), value)


def _at(index: int, value: str) -> Callable[[Text], None]:
    return lambda text: text.insert(index, value)


async def _until(ws: Any, prefix: bytes) -> tuple[bytes, list[bytes]]:
    """The first message starting with `prefix`, and the messages before it."""
    before: list[bytes] = []
    async with asyncio.timeout(10):
        while (message := await ws.recv())[: len(prefix)] != prefix:
            before.append(message)
    return message, before


async def _no_step1_before_probe(ws: Any) -> None:
    """Our answer to a probe comes after anything the messages sent before it made us send."""
    await ws.send(PROBE)
    _, before = await _until(ws, STEP2)
    assert [m for m in before if m[:2] == STEP1] == []


async def _greeted(gw: Running, letter: str, user: str) -> Any:
    """A raw y-websocket client that answered our greeting (it has nothing of its own)."""
    ws = await websockets.connect(gw.ws_url(letter, gw.token(user=user)), max_size=None)
    assert (await ws.recv())[:2] == STEP1
    await ws.send(_step2(b"\x00\x00"))
    return ws


async def _letter_with_bob(gw: Running) -> tuple[str, YClient, Doc[Any]]:
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


async def _roundtrip(client: YClient) -> None:
    """Bob asks for what he lacks: anything relayed to him before arrives before the answer."""
    heard = len(client.updates)
    await client.ws.send(create_sync_message(client.doc))
    await eventually(lambda: len(client.updates) > heard)


async def test_an_update_past_a_hole_waits_for_the_step_2_our_step_1_asks_for(
    gw: Running,
) -> None:
    letter, bob, alice_doc = await _letter_with_bob(gw)
    _hole, past = _edits(alice_doc, _at(0, "A"), _at_end("B"))  # `_hole` is never sent
    ws = await _greeted(gw, letter, "alice")
    await ws.send(create_update_message(past))  # its anchors are known, its clock 0 is not
    step1, _ = await _until(ws, STEP1)
    await _roundtrip(bob)
    assert str(bob.text) == "Dear Sir,"  # neither relayed nor in the letter's document
    assert past not in [r.value for r in await gw.records(Topic.LETTERS, letter)]
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="clock_gap"}'] == 1

    await ws.send(_step2(alice_doc.get_update(_vector(step1))))  # a stock client's answer
    expected = "ADear Sir,B"
    assert str(alice_doc.get("text", type=Text)) == expected
    await eventually(lambda: str(bob.text) == expected)

    async def logged() -> bool:
        return await gw.replayed_text(letter) == expected

    await eventually(logged)
    await _no_step1_before_probe(ws)  # still open, and asks for nothing more
    await ws.close()
    await bob.close()


async def test_step_1s_for_holes_are_bounded(gw: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """None while one awaits its step 2 (that step 2 carries what is dropped meanwhile), and
    at most one a second: a step 2 that still leaves a hole does not ask again at once."""
    letter, bob, alice_doc = await _letter_with_bob(gw)
    _hole, past, later = _edits(alice_doc, _at(0, "A"), _at_end("B"), _at(5, "C"))
    ws = await _greeted(gw, letter, "alice")
    await ws.send(create_update_message(past))
    await _until(ws, STEP1)
    await ws.send(create_update_message(later))  # past the hole too, in Bob's text
    await _no_step1_before_probe(ws)
    await ws.send(_step2(merge_updates(past, later)))  # without the hole: an answer, still gapped
    await _no_step1_before_probe(ws)
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="clock_gap"}'] == 3
    monkeypatch.setattr(connection, "GAP_STEP1_S", 0.0)  # only the time held the last one back
    await ws.send(create_update_message(later))
    await _until(ws, STEP1)
    await _roundtrip(bob)
    assert str(bob.text) == "Dear Sir,"
    assert await gw.replayed_text(letter) == "Dear Sir,"
    await ws.close()
    await bob.close()


def _statuses(client: HpClient, address: str) -> list[int]:
    return [r.body[0] for r in client.received if r.address == address and r.type == hp.SYNC_STATUS]


async def test_a_providers_update_past_a_hole_is_acknowledged_with_the_step_2_that_fills_it(
    gw: Running,
) -> None:
    """A Hocuspocus provider counts every update unsynced until its status comes: the status of
    one dropped for a hole comes once the step 2 that carries it is in the log."""
    letter, bob, alice_doc = await _letter_with_bob(gw)
    address = f"letter-{letter}"
    client = await HpClient.connect(gw)
    await client.synced(address, gw.token(user="alice"))
    await client.send(address, _step2(b"\x00\x00"))  # its answer to our step 1: nothing new
    await eventually(lambda: _statuses(client, address) == [1])
    _hole, past = _edits(alice_doc, _at(0, "A"), _at_end("B"))
    mark = len(client.received)
    await client.send(address, create_update_message(past))
    ours = await client.next(address, hp.SYNC, mark)
    assert ours.body[0] == 0  # our step 1, and no status yet
    assert _statuses(client, address) == [1]
    update = alice_doc.get_update(_vector(bytes([0]) + ours.body))
    await client.send(address, _step2(update))
    await eventually(lambda: _statuses(client, address) == [1, 1, 1])  # the step 2's, the update's
    assert await gw.replayed_text(letter) == "ADear Sir,B"
    assert not client.closed.is_set()
    await client.close()
    await bob.close()


async def test_a_rest_write_past_a_hole_is_refused_and_logs_nothing(gw: Running) -> None:
    letter, bob, alice_doc = await _letter_with_bob(gw)
    hole, past = _edits(alice_doc, _at(0, "A"), _at_end("B"))
    url = f"/v1/letters/{letter}/updates"
    headers = {"Authorization": f"Bearer {gw.token(user='alice')}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        refused = await http.post(url, content=past, headers=headers)
        assert (refused.status_code, refused.json()["detail"]) == (422, "clock gap")
        assert await gw.replayed_text(letter) == "Dear Sir,"
        whole = await http.post(url, content=merge_updates(hole, past), headers=headers)
        assert whole.status_code == 200
    assert await gw.replayed_text(letter) == "ADear Sir,B"
    await bob.close()
