"""A gateway process killed with -9 while stock y-websocket clients type: what it relayed to peers
but never logged (its appends hang: the broker's requests are swallowed) comes back from the
clients' resyncs on the next gateway, each edit logged once, under its author (the `user` header
and the client id agree), and nobody is locked out: a peer whose resync repeats another user's
unlogged edits gets 1013, which y-websocket reconnects after, never a final 44xx
(gateway/live/resyncs.py; tests/gateway/test_resync_foreign.py simulates the same without a
process to kill)."""

import pytest

from gateway.errors import TRY_AGAIN_LATER
from tests.interop.crash_rig import (
    Rig,
    check_log,
    first_refusal,
    never_locked_out,
    two_editors,
    until_logged,
    until_synced,
)

pytestmark = pytest.mark.slow


async def test_an_edit_relayed_but_never_logged_is_logged_under_its_author(rig: Rig) -> None:
    letter = await rig.create_letter()
    alice, bob = await two_editors(rig, letter)
    try:
        rig.kafka.swallow()  # appends hang from now on
        await alice.call("insert", index=10, value="unlogged ")
        await bob.call("waitText", equals="alice bob unlogged ")  # peers hear before the append
        await rig.kill_gateway()
        await alice.call("disconnect")  # so that Bob's resync comes first
        rig.kafka.restore()
        await rig.start_gateway()

        # Bob's resync repeats Alice's unlogged edit: not his to bring, so refused for now.
        assert await first_refusal(bob) == TRY_AGAIN_LATER
        assert await rig.logged_text(letter) == "alice bob "  # the dead gateway never logged it
        await alice.call("reconnect")  # her resync brings it
        await until_logged(rig, letter, "alice bob unlogged ")
        await until_synced(bob)  # he reconnected by himself
        await bob.call("insert", index=19, value="and on")
        await alice.call("waitText", equals="alice bob unlogged and on")
        await until_logged(rig, letter, "alice bob unlogged and on")
        await bob.call("waitText", equals="alice bob unlogged and on")

        never_locked_out(alice)
        never_locked_out(bob)
        await check_log(rig, letter, {alice.client_id: "alice", bob.client_id: "bob"})
    finally:
        await alice.quit()
        await bob.quit()


async def test_edits_both_typed_unlogged_are_logged_under_their_authors(rig: Rig) -> None:
    """Alice's second edit follows Bob's, his follows her first: neither resync applies alone."""
    letter = await rig.create_letter()
    alice, bob = await two_editors(rig, letter)
    try:
        rig.kafka.swallow()
        await alice.call("insert", index=10, value="A1 ")
        await bob.call("waitText", equals="alice bob A1 ")
        await bob.call("insert", index=13, value="B1 ")
        await alice.call("waitText", equals="alice bob A1 B1 ")
        await alice.call("insert", index=16, value="A2")
        await bob.call("waitText", equals="alice bob A1 B1 A2")
        await rig.kill_gateway()
        await alice.call("disconnect")
        await bob.call("disconnect")
        rig.kafka.restore()
        await rig.start_gateway()

        await alice.call("reconnect")
        assert await first_refusal(alice) == TRY_AGAIN_LATER  # B1 is not hers to bring
        assert await rig.logged_text(letter) == "alice bob "  # and her A2 needs it
        await bob.call("reconnect")  # his resync is taken with her held part
        await until_logged(rig, letter, "alice bob A1 B1 A2")
        assert "gateway_resync_parts_taken_total 2.0" in await rig.metrics()
        await until_synced(alice)
        await until_synced(bob)
        await alice.call("insert", index=18, value=" and on")
        await bob.call("waitText", equals="alice bob A1 B1 A2 and on")
        await until_logged(rig, letter, "alice bob A1 B1 A2 and on")
        await alice.call("waitText", equals="alice bob A1 B1 A2 and on")

        never_locked_out(alice)
        never_locked_out(bob)
        await check_log(rig, letter, {alice.client_id: "alice", bob.client_id: "bob"})
    finally:
        await alice.quit()
        await bob.quit()
