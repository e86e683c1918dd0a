"""A gateway process killed with -9 while stock y-websocket clients type: what it relayed to peers
but never logged (its appends hang: the broker's requests are swallowed) comes back from the
clients' resyncs on the next gateway, each edit logged once, under its author (the `user` header
and the client id agree), and nobody is locked out: a peer whose resync repeats another user's
unlogged edits gets 1013, which y-websocket reconnects after, never a final 44xx
(gateway/live/resyncs.py; tests/gateway/test_resync_foreign.py simulates the same without a
process to kill)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.errors import TRY_AGAIN_LATER
from gateway.preparse import STATE_LIMITS, check_update
from tests.interop.crash_rig import Rig, crash_rig, doc_updates
from tests.interop.driver import NodeClient
from tests.support import eventually

pytestmark = pytest.mark.slow
ABNORMAL = 1006  # a socket that ended without a close frame
WAIT_S = 30.0  # y-websocket retries at most every 2.5 s; a gateway starts in a few seconds


@pytest_asyncio.fixture(loop_scope="session")
async def rig(tmp_path: Path, redis_db: str, node_modules: Path) -> AsyncIterator[Rig]:
    async with crash_rig(tmp_path, redis_db) as running:
        yield running


async def _editors(rig: Rig, letter: str) -> tuple[NodeClient, NodeClient]:
    """Alice and Bob synced, each having typed (and logged) once: their client ids are theirs."""
    alice = await rig.client(letter, "alice")
    bob = await rig.client(letter, "bob")
    await alice.event("sync", synced=True)
    await bob.event("sync", synced=True)
    await alice.call("insert", index=0, value="alice ")
    await bob.call("waitText", equals="alice ")
    await bob.call("insert", index=6, value="bob ")
    await alice.call("waitText", equals="alice bob ")
    await _logged(rig, letter, "alice bob ")
    return alice, bob


async def _logged(rig: Rig, letter: str, text: str) -> None:
    async def done() -> bool:
        return await rig.logged_text(letter) == text

    await eventually(done, timeout=WAIT_S, interval=0.2)


async def _synced(client: NodeClient) -> None:
    async def synced() -> bool:
        return bool((await client.call("unsynced")).get("synced"))

    await eventually(synced, timeout=WAIT_S, interval=0.1)


def _closes(client: NodeClient) -> list[int | None]:
    return [e.get("code") for e in client.events if e.get("event") == "close"]


async def _first_refusal(client: NodeClient) -> int | None:
    """The first close code the server chose (not a local close, None; the dead gateway's
    sockets just end: 1006)."""
    chosen = await eventually(
        lambda: [c for c in _closes(client) if c not in (None, ABNORMAL)], WAIT_S
    )
    return chosen[0]


def _never_locked_out(client: NodeClient) -> None:
    final = [code for code in _closes(client) if code is not None and 4400 <= code < 4500]
    assert not final, f"closed with {final}: y-websocket does not reconnect after it"


async def _check_log(rig: Rig, letter: str, authors: dict[int, str]) -> None:
    """Every struct of the letter is logged exactly once, under the user who owns its client id."""
    seen: dict[int, list[tuple[int, int]]] = {}
    for record in doc_updates(await rig.records(letter)):
        user = dict(record.headers)["user"].decode()
        for client, start, end in check_update(record.value, STATE_LIMITS).blocks:
            assert authors.get(client) == user, f"{client}'s structs logged under {user}"
            seen.setdefault(client, []).append((start, end))
    for client, ranges in seen.items():
        ranges.sort()
        ends = [0] + [end for _, end in ranges[:-1]]
        assert [start for start, _ in ranges] == ends, f"{client}: {ranges} (gap or twice)"


async def test_an_edit_relayed_but_never_logged_is_logged_under_its_author(rig: Rig) -> None:
    letter = await rig.create_letter()
    alice, bob = await _editors(rig, letter)
    try:
        rig.kafka.swallow()  # appends hang from now on
        await alice.call("insert", index=10, value="unlogged ")
        await bob.call("waitText", equals="alice bob unlogged ")  # peers hear before the append
        await rig.kill_gateway()
        await alice.call("disconnect")  # so that Bob's resync comes first
        rig.kafka.restore()
        await rig.start_gateway()

        # Bob's resync repeats Alice's unlogged edit: not his to bring, so refused for now.
        assert await _first_refusal(bob) == TRY_AGAIN_LATER
        assert await rig.logged_text(letter) == "alice bob "  # the dead gateway never logged it
        await alice.call("reconnect")  # her resync brings it
        await _logged(rig, letter, "alice bob unlogged ")
        await _synced(bob)  # he reconnected by himself
        await bob.call("insert", index=19, value="and on")
        await alice.call("waitText", equals="alice bob unlogged and on")
        await _logged(rig, letter, "alice bob unlogged and on")
        await bob.call("waitText", equals="alice bob unlogged and on")

        _never_locked_out(alice)
        _never_locked_out(bob)
        await _check_log(rig, letter, {alice.client_id: "alice", bob.client_id: "bob"})
    finally:
        await alice.quit()
        await bob.quit()


async def test_edits_both_typed_unlogged_are_logged_under_their_authors(rig: Rig) -> None:
    """Alice's second edit follows Bob's, his follows her first: neither resync applies alone."""
    letter = await rig.create_letter()
    alice, bob = await _editors(rig, letter)
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
        assert await _first_refusal(alice) == TRY_AGAIN_LATER  # B1 is not hers to bring
        assert await rig.logged_text(letter) == "alice bob "  # and her A2 needs it
        await bob.call("reconnect")  # his resync is taken with her held part
        await _logged(rig, letter, "alice bob A1 B1 A2")
        assert "gateway_resync_parts_taken_total 2.0" in await rig.metrics()
        await _synced(alice)
        await _synced(bob)
        await alice.call("insert", index=18, value=" and on")
        await bob.call("waitText", equals="alice bob A1 B1 A2 and on")
        await _logged(rig, letter, "alice bob A1 B1 A2 and on")
        await alice.call("waitText", equals="alice bob A1 B1 A2 and on")

        _never_locked_out(alice)
        _never_locked_out(bob)
        await _check_log(rig, letter, {alice.client_id: "alice", bob.client_id: "bob"})
    finally:
        await alice.quit()
        await bob.quit()
