"""An update another instance's record brings (heard through the log, `Room.apply_remote`) that
builds on one not logged yet stays pending in the room, where pycrdt's `get_update()` leaves it
out: a peer joining meanwhile still gets it in its sync step 2, so its text is whole once the
missing update arrives, and the letter counts in `gateway_letters_pending` until then."""

from typing import Any

import pytest
from pycrdt import Doc, Text, create_update_message

from gateway.live import room as room_module
from tests.gateway.harness import Running
from tests.gateway.pending_helpers import chained_edits, log_update
from tests.support import eventually

PENDING = "gateway_letters_pending"


async def test_a_peer_joining_while_a_remote_update_is_pending_gets_it(
    pair_without_redis: tuple[Running, Running],
) -> None:
    a, b = pair_without_redis
    letter = await a.create_letter()
    first, second = chained_edits("first ", "second")
    bob = await b.client(letter, user="bob")  # b holds the letter
    await bob.synced.wait()
    # A record of a's (`log_update` uses its producer's envelope) before what it builds on, as a
    # restored log holds one: b applies it from the log, where it waits for "first ".
    await log_update(a, letter, second)
    await eventually(lambda: second in bob.updates)  # relayed by b: bob holds it pending too
    assert str(bob.text) == ""
    assert (await b.metrics())[PENDING] == 1.0
    cy = await b.client(letter, user="cy")  # joins while it is pending
    await cy.synced.wait()
    ann = await a.client(letter, user="ann")
    await ann.synced.wait()
    await ann.ws.send(create_update_message(first))  # the missing update, through a
    await eventually(lambda: str(bob.text) == "first second")
    await eventually(lambda: first in cy.updates)  # b relays it to cy as to bob
    assert str(cy.text) == "first second"  # without the pending part: "first " for good
    assert (await b.metrics())[PENDING] == 0.0
    for client in (ann, bob, cy):
        await client.close()


async def test_remote_updates_in_order_cost_no_look_at_the_document(
    pair_without_redis: tuple[Running, Running],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Looking for pending parts (`pending_parts`) costs up to ~1 ms in a letter of thousands of
    Yjs clients (re-read RR: every remote update paid it): edits in order, inserts, deletions
    and typing between another's words, are known whole from the letter's shape alone."""
    a, b = pair_without_redis
    looked: list[int] = []
    real = room_module.pending_parts  # type: ignore[attr-defined]

    def counted(doc: Doc[Any], parts: list[bytes]) -> list[bytes]:
        looked.append(len(parts))
        return real(doc, parts)

    monkeypatch.setattr(room_module, "pending_parts", counted)
    letter = await a.create_letter()
    bob = await b.client(letter, user="bob")  # b hears ann's edits through the log
    ann = await a.client(letter, user="ann")
    await bob.synced.wait()
    await ann.synced.wait()
    await ann.insert("hello world")
    await eventually(lambda: str(bob.text) == "hello world")
    await bob.insert("!")  # b's own: a hears it; ann then deletes before it

    def delete(doc: Doc[Any]) -> None:
        text = doc.get("text", type=Text)
        del text[0:6]

    await eventually(lambda: str(ann.text).endswith("!"))
    await ann.edit(delete)
    await eventually(lambda: str(bob.text) == str(ann.text))
    assert "hello" not in str(bob.text)
    assert looked == []  # b never looked: nothing was pending
    assert (await b.metrics())[PENDING] == 0.0
    for client in (ann, bob):
        await client.close()
