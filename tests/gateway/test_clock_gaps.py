"""An update past a hole in its client's clocks is never applied, relayed or logged: pycrdt 0.14
integrates it where Yjs holds it pending, and a saved state then reloads as less than the
letter had (docs/contracts.md "Saved Yjs states"). The sender gets our sync step 1 instead,
and a stock client's answer, a step 2 with the hole, is taken (gateway/live/connection.py)."""

import httpx
import pytest
from pycrdt import (
    Decoder,
    Text,
    create_sync_message,
    create_update_message,
    merge_updates,
)

from gateway.live import connection
from gateway.wire import hocuspocus as hp
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.gateway.hocuspocus_client import HpClient
from tests.gateway.pending_helpers import (
    STEP1,
    as_step2,
    at,
    at_end,
    greeted,
    letter_with_bob,
    no_step1_before_probe,
    recv_until,
    text_edits,
)
from tests.support import eventually


def _vector(step1: bytes) -> bytes:
    decoder = Decoder(step1)
    decoder.read_var_uint(), decoder.read_var_uint()
    return decoder.read_message() or b""


async def _roundtrip(client: YClient) -> None:
    """Bob asks for what he lacks: anything relayed to him before arrives before the answer."""
    heard = len(client.updates)
    await client.ws.send(create_sync_message(client.doc))
    await eventually(lambda: len(client.updates) > heard)


async def test_an_update_past_a_hole_waits_for_the_step_2_our_step_1_asks_for(
    gw: Running,
) -> None:
    letter, bob, alice_doc = await letter_with_bob(gw)
    _hole, past = text_edits(alice_doc, at(0, "A"), at_end("B"))  # `_hole` is never sent
    ws = await greeted(gw, letter, "alice")
    await ws.send(create_update_message(past))  # its anchors are known, its clock 0 is not
    step1, _ = await recv_until(ws, STEP1)
    await _roundtrip(bob)
    assert str(bob.text) == "Dear Sir,"  # neither relayed nor in the letter's document
    assert past not in [r.value for r in await gw.records(Topic.LETTERS, letter)]
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="clock_gap"}'] == 1

    await ws.send(as_step2(alice_doc.get_update(_vector(step1))))  # a stock client's answer
    expected = "ADear Sir,B"
    assert str(alice_doc.get("text", type=Text)) == expected
    await eventually(lambda: str(bob.text) == expected)

    async def logged() -> bool:
        return await gw.replayed_text(letter) == expected

    await eventually(logged)
    await no_step1_before_probe(ws)  # still open, and asks for nothing more
    await ws.close()
    await bob.close()


async def test_step_1s_for_holes_are_bounded(gw: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """None while one awaits its step 2 (that step 2 carries what is dropped meanwhile), and
    at most one a second: a step 2 that still leaves a hole does not ask again at once."""
    letter, bob, alice_doc = await letter_with_bob(gw)
    _hole, past, later = text_edits(alice_doc, at(0, "A"), at_end("B"), at(5, "C"))
    ws = await greeted(gw, letter, "alice")
    await ws.send(create_update_message(past))
    await recv_until(ws, STEP1)
    await ws.send(create_update_message(later))  # past the hole too, in Bob's text
    await no_step1_before_probe(ws)
    await ws.send(as_step2(merge_updates(past, later)))  # without the hole: an answer, still gapped
    await no_step1_before_probe(ws)
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="clock_gap"}'] == 3
    monkeypatch.setattr(connection, "GAP_STEP1_S", 0.0)  # only the time held the last one back
    await ws.send(create_update_message(later))
    await recv_until(ws, STEP1)
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
    letter, bob, alice_doc = await letter_with_bob(gw)
    address = f"letter-{letter}"
    client = await HpClient.connect(gw)
    await client.synced(address, gw.token(user="alice"))
    await client.send(address, as_step2(b"\x00\x00"))  # its answer to our step 1: nothing new
    await eventually(lambda: _statuses(client, address) == [1])
    _hole, past = text_edits(alice_doc, at(0, "A"), at_end("B"))
    mark = len(client.received)
    await client.send(address, create_update_message(past))
    ours = await client.next(address, hp.SYNC, mark)
    assert ours.body[0] == 0  # our step 1, and no status yet
    assert _statuses(client, address) == [1]
    update = alice_doc.get_update(_vector(bytes([0]) + ours.body))
    await client.send(address, as_step2(update))
    await eventually(lambda: _statuses(client, address) == [1, 1, 1])  # the step 2's, the update's
    assert await gw.replayed_text(letter) == "ADear Sir,B"
    assert not client.closed.is_set()
    await client.close()
    await bob.close()


async def test_a_rest_write_past_a_hole_is_refused_and_logs_nothing(gw: Running) -> None:
    letter, bob, alice_doc = await letter_with_bob(gw)
    hole, past = text_edits(alice_doc, at(0, "A"), at_end("B"))
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
