"""A held part that can never apply must not stand in the way of the others
(gateway/live/resyncs.py): an editor's crafted resync whose own part builds on structs nobody
has is held like any other, and the two peers holding each other's unlogged edits are still
taken together, without it."""

from typing import Any

from pycrdt import Doc, Text

from gateway.errors import TRY_AGAIN_LATER
from tests.gateway.crash_owners import both_logged, logged
from tests.gateway.harness import Running, YClient, type_relayed
from tests.support import eventually

MALLORY_CLIENT = 777777


def _poisoned(base: Doc[Any], victim: int) -> Doc[Any]:
    """Mallory's document: the letter, 2000 characters forged under the victim's client id at
    its next clocks, then a word of her own after them: her own part needs the forged structs,
    which are never taken (they are under another user's id)."""
    forger: Doc[Any] = Doc(client_id=victim)
    forger.apply_update(base.get_update())
    text = forger.get("text", type=Text)
    text.insert(len(text), "F" * 2000)
    mallory: Doc[Any] = Doc(client_id=MALLORY_CLIENT)
    mallory.apply_update(forger.get_update())
    text = mallory.get("text", type=Text)
    text.insert(len(text), "evil")
    return mallory


async def test_a_held_part_that_never_applies_does_not_block_the_mutual_resync(
    gw: Running,
) -> None:
    letter, alice, bob = await both_logged(gw)
    in_log: Doc[Any] = Doc()
    in_log.apply_update(alice.doc.get_update())  # what the log has
    type_relayed(alice.doc, "A1 ", bob.doc)
    type_relayed(bob.doc, "B1 ", alice.doc)  # after A1
    type_relayed(alice.doc, "A2", bob.doc)  # after B1: neither resync applies alone

    poison = _poisoned(in_log, alice.doc.client_id)
    mallory = await YClient.connect(gw.ws_url(letter, gw.token(user="mallory")), doc=poison)
    await mallory.closed.wait()
    assert mallory.close_code == TRY_AGAIN_LATER  # her part is held
    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER  # A2 needs B1: held too

    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)

    async def settled() -> bool:
        return bob2.closed.is_set() or await logged(gw, letter, "alice bob A1 B1 A2")

    await eventually(settled)
    assert bob2.close_code is None  # alice's held part and his own were taken, not mallory's
    assert await gw.logged_text(letter) == "alice bob A1 B1 A2"
    assert (await gw.metrics())["gateway_resync_parts_taken_total"] == 2
    await bob2.close()
