"""A resync that repeats another user's edits the letter does not have: a gateway that died
between relaying them and logging them (kill -9: no rescue) left them with their peers only
(gateway/live/resyncs.py). The peer's own edits are taken; the others' wait for their author's
resync, the peer refused meanwhile with a close code stock y-websocket reconnects after (1013:
y-websocket 3.1 takes every 44xx close as final, and a 4403 here had locked the peer out for
good). Two peers each holding the other's edits, which neither resync can bring alone, are taken
together. A live update writing under another user's id stays 4403."""

from typing import Any

from pycrdt import Doc, Text, create_update_message

from gateway.errors import FORBIDDEN, TRY_AGAIN_LATER
from schemas.events import Topic
from tests.gateway.crash_owners import both_logged, logged
from tests.gateway.harness import Running, YClient, type_relayed
from tests.support import eventually


async def test_a_resync_of_another_users_unlogged_edits_is_retried_not_final(
    gw: Running,
) -> None:
    letter, alice, bob = await gw.two_editors()
    await bob.insert("bob ")  # bob's client id is his from now on
    await eventually(lambda: str(alice.text) == "bob ")
    await alice.close()
    await bob.close()

    # The gateway relayed bob's next edit to alice and died before logging it.
    unlogged: list[bytes] = []
    sub = bob.doc.observe(lambda event: unlogged.append(event.update))
    bob.text.insert(len(bob.text), "unlogged ")
    bob.doc.unobserve(sub)
    alice.doc.apply_update(unlogged[0])

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER  # y-websocket reconnects after it
    assert not 4400 <= TRY_AGAIN_LATER < 4500

    # Its author comes back: his resync brings the edit; then alice's resync repeats it harmlessly.
    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await bob2.synced.wait()
    alice3 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice3.synced.wait()
    await alice3.insert("alice")
    await eventually(lambda: str(bob2.text) == "bob unlogged alice")
    await eventually(lambda: logged(gw, letter, "bob unlogged alice"))  # bob heard it first
    assert alice3.close_code is None and bob2.close_code is None
    await alice3.close()
    await bob2.close()


async def test_a_live_update_under_another_users_id_is_still_refused_for_good(
    gw: Running,
) -> None:
    _, alice, bob = await gw.two_editors()
    await bob.insert("bob ")
    await eventually(lambda: str(alice.text) == "bob ")
    posing: Doc[Any] = Doc(client_id=bob.doc.client_id)
    posing.apply_update(alice.doc.get_update())
    forged: list[bytes] = []
    sub = posing.observe(lambda event: forged.append(event.update))
    posing.get("text", type=Text).insert(4, "forged")
    posing.unobserve(sub)
    await alice.ws.send(create_update_message(forged[0]))
    await alice.closed.wait()
    assert alice.close_code == FORBIDDEN
    await bob.close()


async def test_a_peers_own_unlogged_edits_are_taken_before_its_authors_return(
    gw: Running,
) -> None:
    letter, alice, bob = await both_logged(gw)
    type_relayed(alice.doc, "A1 ", bob.doc)
    type_relayed(bob.doc, "B1 ", alice.doc)  # after A1

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER  # bob's B1 is not hers to bring
    await eventually(lambda: logged(gw, letter, "alice bob A1 "))  # but her A1 is taken
    assert (await gw.metrics())["gateway_resync_parts_taken_total"] == 1

    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await bob2.synced.wait()
    await eventually(lambda: logged(gw, letter, "alice bob A1 B1 "))
    assert bob2.close_code is None
    await bob2.close()


async def test_two_peers_holding_each_others_unlogged_edits_are_taken_together(
    gw: Running,
) -> None:
    letter, alice, bob = await both_logged(gw)
    before = len(await gw.records(Topic.LETTERS, letter))
    type_relayed(alice.doc, "A1 ", bob.doc)
    type_relayed(bob.doc, "B1 ", alice.doc)  # after A1
    type_relayed(alice.doc, "A2", bob.doc)  # after B1: neither resync applies alone

    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice2.closed.wait()
    assert alice2.close_code == TRY_AGAIN_LATER
    # A2 needs B1: nothing taken yet (counted as it is taken, before the socket closes).
    assert (await gw.metrics())["gateway_resync_parts_taken_total"] == 0

    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await bob2.synced.wait()
    await eventually(lambda: logged(gw, letter, "alice bob A1 B1 A2"))
    assert bob2.close_code is None  # everything its resync carried is in the letter now
    added = (await gw.records(Topic.LETTERS, letter))[before:]
    users = sorted(
        dict(r.headers)["user"] for r in added if dict(r.headers)["type"] == b"doc.update"
    )
    assert users == [b"alice", b"bob"]  # each part under its own author
    assert (await gw.metrics())["gateway_resync_parts_taken_total"] == 2

    alice3 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    await alice3.synced.wait()
    await alice3.insert(" and on")
    await eventually(lambda: str(bob2.text) == "alice bob A1 B1 A2 and on")
    assert alice3.close_code is None
    await alice3.close()
    await bob2.close()
