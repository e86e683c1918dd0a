"""Awareness: relayed to everyone (the sender too), stamped from the token, owned per connection."""

import json
from typing import Any
from unittest.mock import ANY

from pycrdt import Awareness, Doc, create_awareness_message

from eventlog.records import Record
from schemas.events import Topic
from tests.gateway.harness import Running, YClient
from tests.support import eventually


def _states(client: YClient) -> dict[int, object]:
    current: dict[int, object] = {}
    for entries in client.awareness:
        for cid, _clock, state in entries:
            current[cid] = state
    return {cid: state for cid, state in current.items() if state is not None}


async def test_stamping_relay_ownership_and_removal(gw: Running) -> None:
    letter, alice, bob = await gw.two_editors()
    mine = Awareness(alice.doc)
    await alice.set_awareness(mine, {"cursor": 1, "user": {"id": "bob", "name": "Not Alice"}})
    await eventually(lambda: mine.client_id in _states(bob))
    state: Any = _states(bob)[mine.client_id]
    assert state == {
        "cursor": 1,
        "user": {"id": "alice", "name": "Alice", "color": state["user"]["color"]},
    }
    await eventually(lambda: mine.client_id in _states(alice))  # relayed to the sender too

    # Bob tries to move and then to remove Alice's caret: both dropped.
    forged = Awareness(Doc(client_id=mine.client_id))
    forged._meta[mine.client_id] = {"clock": 50, "lastUpdated": 0}
    forged.set_local_state({"cursor": 99})
    await bob.ws.send(create_awareness_message(forged.encode_awareness_update([mine.client_id])))
    removal = b"\x01" + _entry(mine.client_id, 60, b"null")
    await bob.ws.send(create_awareness_message(removal))
    await bob.ws.send(b"\x03")  # query: the reply shows what the server holds
    count = len(bob.awareness)
    await eventually(lambda: len(bob.awareness) > count)
    assert _states(bob)[mine.client_id]["cursor"] == 1  # type: ignore[index]

    await alice.close()
    await eventually(lambda: mine.client_id not in _states(bob))

    async def logged_until_removal() -> list[Record]:
        # Presence is appended after peers hear it, never acknowledged: wait for Alice's removal,
        # her last record (a letter's appends keep their order, so the earlier ones are in too).
        records = await gw.records(Topic.PRESENCE, letter)
        replayed = Awareness(Doc())
        for record in records:
            replayed.apply_awareness_update(record.value, "log")
        gone = mine.client_id in replayed.meta and mine.client_id not in replayed.states
        return records if gone else []

    records = await eventually(logged_until_removal)
    assert all(dict(r.headers)["user"] == b"alice" for r in records)


def _entry(client_id: int, clock: int, state: bytes) -> bytes:
    from pycrdt import write_var_uint

    return write_var_uint(client_id) + write_var_uint(clock) + write_var_uint(len(state)) + state


async def test_presence_records_are_throttled_and_merged(gw: Running) -> None:
    letter = await gw.create_letter()
    alice = await gw.client(letter, user="alice")
    await alice.synced.wait()
    mine = Awareness(alice.doc)
    for i in range(30):
        await alice.set_awareness(mine, {"cursor": i})
    await eventually(lambda: any(json.loads(json.dumps(s)) for s in _states(alice).values()))

    def last_cursor() -> object:
        return _states(alice).get(mine.client_id, {}).get("cursor")  # type: ignore[attr-defined]

    await eventually(lambda: last_cursor() == 29)

    async def logged_last() -> bool:
        records = await gw.records(Topic.PRESENCE, letter)
        return bool(records) and b'"cursor":29' in records[-1].value

    await eventually(logged_last)
    records = await gw.records(Topic.PRESENCE, letter)
    assert len(records) < 30  # merged: at most one per 100 ms


async def test_echoes_are_dropped_without_using_the_senders_budget(gw: Running) -> None:
    # y-websocket's provider sends back every awareness state it receives. Those echoes
    # change nothing; were they rate limited like the sender's own messages, an echo arriving
    # after Bob's own caret (over budget) would take its place and the caret would be lost.
    _, alice, bob = await gw.two_editors()
    hers = Awareness(alice.doc)
    await alice.set_awareness(hers, {"cursor": 1})
    await eventually(lambda: hers.client_id in _states(bob))
    clock = max(c for e in bob.awareness for cid, c, _ in e if cid == hers.client_id)
    echo = create_awareness_message(
        b"\x01" + _entry(hers.client_id, clock, json.dumps(_states(bob)[hers.client_id]).encode())
    )
    before = await gw.metrics()
    for _ in range(12):  # more than the awareness burst (10)
        await bob.ws.send(echo)
    his = Awareness(bob.doc)
    await bob.set_awareness(his, {"cursor": 7})
    await bob.ws.send(echo)
    await eventually(lambda: _states(alice).get(his.client_id, {}).get("cursor") == 7)  # type: ignore[attr-defined]
    await _round_trip(bob)  # the last echo, sent after the caret, has been handled too
    after = await gw.metrics()
    assert after["gateway_awareness_echoes_total"] - before["gateway_awareness_echoes_total"] == 13
    for reason in ("awareness_not_owned", "awareness_rate_limited"):
        key = f'gateway_refusals_total{{reason="{reason}"}}'
        assert after.get(key, 0.0) == before.get(key, 0.0), reason
    # A foreign state with a newer clock is no echo: still refused and counted.
    forged = create_awareness_message(b"\x01" + _entry(hers.client_id, clock + 5, b'{"x":1}'))
    await bob.ws.send(forged)
    key = 'gateway_refusals_total{reason="awareness_not_owned"}'

    async def refused() -> bool:
        return (await gw.metrics()).get(key, 0.0) == before.get(key, 0.0) + 1

    await eventually(refused)
    await _round_trip(bob)
    assert _states(bob)[hers.client_id] == {"cursor": 1, "user": ANY}  # what the server holds


async def _round_trip(client: YClient) -> None:
    """Query awareness and wait for the reply: everything sent before it has been handled."""
    count = len(client.awareness)
    await client.ws.send(b"\x03")
    await eventually(lambda: len(client.awareness) > count)
