"""A resync that repeats another user's edits the letter does not have: a gateway that died
between relaying them and logging them (kill -9: no rescue) left them with their peers only.
The peer is refused until their author resyncs them, with a close code stock y-websocket
reconnects after (1013): y-websocket 3.1 takes every 44xx close as final, and a 4403 here had
locked the peer out for good. A live update writing under another user's id stays 4403."""

from pycrdt import Doc, Text, create_update_message

from gateway.errors import FORBIDDEN, TRY_AGAIN_LATER
from tests.gateway.harness import Running, YClient
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
    assert await gw.logged_text(letter) == "bob unlogged alice"
    assert alice3.close_code is None and bob2.close_code is None
    await alice3.close()
    await bob2.close()


async def test_a_live_update_under_another_users_id_is_still_refused_for_good(
    gw: Running,
) -> None:
    _, alice, bob = await gw.two_editors()
    await bob.insert("bob ")
    await eventually(lambda: str(alice.text) == "bob ")
    posing = Doc(client_id=bob.doc.client_id)
    posing.apply_update(alice.doc.get_update())
    forged: list[bytes] = []
    sub = posing.observe(lambda event: forged.append(event.update))
    posing.get("text", type=Text).insert(4, "forged")
    posing.unobserve(sub)
    await alice.ws.send(create_update_message(forged[0]))
    await alice.closed.wait()
    assert alice.close_code == FORBIDDEN
    await bob.close()
