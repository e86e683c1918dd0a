"""Awareness held for another gateway instance (Tansu): the same user's tab takes its id over
through this instance, nobody else can; a state its instance stops renewing times out here."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Awareness, Doc, create_awareness_message

from gateway.live import presence
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway
from tests.support import eventually


@pytest_asyncio.fixture(loop_scope="session")
async def pair(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[tuple[Running, Running]]:
    prefix = f"p{uuid.uuid4().hex[:8]}."

    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, partitions=2, topic_prefix=prefix,
                        log_url=f"kafka://{kafka_bootstrap}", kafka_idempotence=False)  # fmt: skip

    async with running_gateway(settings("a")) as a, running_gateway(settings("b")) as b:
        yield a, b


def _states(client: YClient) -> dict[int, Any]:
    current: dict[int, Any] = {}
    for entries in client.awareness:
        for cid, _clock, state in entries:
            current[cid] = state
    return {cid: state for cid, state in current.items() if state is not None}


def _cursor(client: YClient, cid: int) -> object:
    return _states(client).get(cid, {}).get("cursor")


async def _held(client: YClient) -> dict[int, Any]:
    """What the gateway holds, from its answer to a query-awareness."""
    count = len(client.awareness)
    await client.ws.send(b"\x03")
    await eventually(lambda: len(client.awareness) > count)
    return {cid: state for cid, _clock, state in client.awareness[-1] if state is not None}


async def test_a_tab_reconnecting_through_another_instance_takes_its_id_over(
    pair: tuple[Running, Running],
) -> None:
    a, b = pair
    letter = await a.create_letter()
    alice = await a.client(letter, user="alice", name="Alice")
    carol = await a.client(letter, user="carol", name="Carol", events=1)
    bob = await b.client(letter, user="bob", name="Bob")
    for client in (alice, carol, bob):
        await client.synced.wait()
    mine, hers = Awareness(alice.doc), Awareness(carol.doc)
    await alice.set_awareness(mine, {"cursor": 1})
    await carol.set_awareness(hers, {"cursor": 7})
    await eventually(lambda: _cursor(bob, mine.client_id) == 1 and _cursor(bob, hers.client_id))

    # A has not noticed her socket is gone (or never will: killed); the tab, same doc and so
    # the same awareness client id, reconnects through B, where A holds that id.
    again = await YClient.connect(b.ws_url(letter, b.token(user="alice", name="Alice")),
                                  doc=alice.doc)  # fmt: skip
    await again.synced.wait()
    await again.set_awareness(mine, {"cursor": 2})
    await eventually(lambda: _cursor(bob, mine.client_id) == 2)
    await eventually(lambda: _cursor(carol, mine.client_id) == 2)  # A hears B's record of it

    # Another user cannot take the id A holds for Carol.
    forged = Awareness(Doc(client_id=hers.client_id))
    forged._meta[hers.client_id] = {"clock": 50, "lastUpdated": 0}
    forged.set_local_state({"cursor": 99})
    await bob.ws.send(create_awareness_message(forged.encode_awareness_update([hers.client_id])))
    assert (await _held(bob))[hers.client_id]["cursor"] == 7

    # Her old socket on A ends at last: A must not remove the caret that went on through B.
    await alice.close()
    await eventually(lambda: any(m.get("type") == "session.left" for m in carol.app))
    await carol.set_awareness(hers, {"cursor": 8})  # logged after any removal A would log
    await eventually(lambda: _cursor(bob, hers.client_id) == 8)
    assert _cursor(bob, mine.client_id) == 2
    for client in (again, carol, bob):
        await client.close()


async def test_a_state_another_instance_stops_renewing_times_out(
    pair: tuple[Running, Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    # y-protocols' 30 s, shortened; renewed every second below, so B's consumer may stall ~5 s
    # (the shared broker under load) before it wrongly expires her (at 3 s: ~2 s, seen failing).
    timeout = 6.0
    monkeypatch.setattr(presence, "REMOTE_TIMEOUT_S", timeout)
    a, b = pair
    letter = await a.create_letter()
    alice = await a.client(letter, user="alice", name="Alice")
    bob = await b.client(letter, user="bob", name="Bob")
    await alice.synced.wait()
    await bob.synced.wait()
    mine, his = Awareness(alice.doc), Awareness(bob.doc)
    await bob.set_awareness(his, {"cursor": 3})
    await alice.set_awareness(mine, {"cursor": 1})
    await eventually(lambda: _cursor(bob, mine.client_id) == 1)

    # Alive, renewing (y-protocols renews every half timeout; here more often, as the log may
    # be slow): kept on B for twice the timeout.
    for _ in range(12):
        await asyncio.sleep(timeout / 6)  # the time between renewals, not a synchronisation
        await alice.set_awareness(mine, {"cursor": 1})  # same state, newer clock
    assert _cursor(bob, mine.client_id) == 1
    removed = [s for e in bob.awareness for cid, _c, s in e if cid == mine.client_id and s is None]
    assert removed == []

    # Renewals stop (A died): B removes her state for its peers, and newcomers no longer get it.
    await eventually(lambda: mine.client_id not in _states(bob), timeout=3 * timeout)
    dave = await b.client(letter, user="dave", name="Dave")
    await dave.synced.wait()
    assert set(await _held(dave)) == {his.client_id}
    for client in (alice, bob, dave):
        await client.close()
