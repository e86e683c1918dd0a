"""Echo is the acknowledgement; peers hear an update as it is queued. A failed append closes the
letter's clients with 4503; their resync on reconnect and the gateway's rescue of what it had
accepted (gateway/live/rescue.py) bring every typed update into the log. While too much waits for
the log, a connection that sends is read no more (gateway/live/intake.py), and nothing is lost."""

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from pycrdt import Doc, Text, create_sync_message, create_update_message, write_var_uint

from eventlog.errors import LogUnavailableError
from gateway.errors import LOG_UNAVAILABLE, MALFORMED
from schemas.envelope import decode_record
from schemas.events import SessionLeft, Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running, YClient, types_of
from tests.support import eventually


@pytest_asyncio.fixture(loop_scope="session")
async def faulty(tmp_path: Path) -> AsyncIterator[tuple[Running, FaultyLog]]:
    async with faulty_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as pair:
        yield pair


async def test_peers_hear_an_update_as_it_is_queued_the_sender_once_it_is_logged(
    faulty: tuple[Running, FaultyLog],
) -> None:
    gw, log = faulty
    letter, alice, bob = await gw.two_editors()
    acked = len(alice.updates)
    log.gate.clear()
    await alice.insert("hello")
    await eventually(lambda: log.waiting == 1)
    await eventually(lambda: str(bob.text) == "hello")  # fan-out does not wait for the log
    assert len(alice.updates) == acked  # no echo yet: not durable
    assert await gw.logged_text(letter) == ""
    log.gate.set()
    await eventually(lambda: len(alice.updates) == acked + 1)
    assert alice.updates[-1] == (await gw.records(Topic.LETTERS, letter))[-1].value
    assert await gw.logged_text(letter) == "hello"


async def test_append_failure_closes_4503_and_resync_loses_nothing(
    faulty: tuple[Running, FaultyLog],
) -> None:
    gw, log = faulty
    letter, alice, bob = await gw.two_editors()
    await alice.insert("one ")
    await eventually(lambda: str(bob.text) == "one ")

    log.broken = True
    await alice.insert("two ")
    await alice.closed.wait()
    await bob.closed.wait()
    assert (alice.close_code, bob.close_code) == (LOG_UNAVAILABLE, LOG_UNAVAILABLE)
    bob.text.insert(len(bob.text), "three ")  # typed while disconnected: stays in bob's doc
    assert "two" not in await gw.logged_text(letter)

    log.broken = False
    alice2 = await YClient.connect(gw.ws_url(letter, gw.token(user="alice")), doc=alice.doc)
    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await eventually(lambda: str(alice2.text) == str(bob2.text) and len(str(bob2.text)) == 14)
    expected = str(alice2.text)
    assert sorted(expected.split()) == ["one", "three", "two"]

    async def all_in_log() -> bool:
        return await gw.logged_text(letter) == expected

    await eventually(all_in_log)
    await alice2.close()
    await bob2.close()


async def test_sessions_closed_by_a_failed_append_are_logged_as_left_once_the_log_is_back(
    faulty: tuple[Running, FaultyLog],
) -> None:
    """Nobody need come back for their session to end: else the projector's presence and
    connections, and the snapshotter's version at the end of the last session, wait for a
    session.left that never comes."""
    gw, log = faulty
    letter, alice, bob = await gw.two_editors()
    log.broken = True
    await alice.insert("lost? no")
    await alice.closed.wait()
    await bob.closed.wait()
    log.broken = False  # the rescue retries in the background; nobody reconnects

    async def left() -> list[dict[str, Any]]:
        records = await gw.records(Topic.LETTERS, letter)
        ended = [r for r in records if types_of([r]) == ["session.left"]]
        dumped = []
        for r in ended:
            payload = decode_record(r.key, r.value, r.headers).payload
            assert isinstance(payload, SessionLeft), payload
            dumped.append(payload.model_dump(mode="json"))
        return dumped

    ended = await eventually(left)
    assert sorted(e["user"]["id"] for e in ended) == ["alice", "bob"]
    assert {e["reason"] for e in ended} == {"log unavailable, reconnect"}
    assert await gw.logged_text(letter) == "lost? no"  # logged before the session.left entries
    types = types_of(await gw.records(Topic.LETTERS, letter))
    assert types.index("doc.update", types.index("session.joined")) < types.index("session.left")
    await eventually(lambda: not gw.app.state.gateway.conns)  # their own leave() ran
    assert types_of(await gw.records(Topic.LETTERS, letter)).count("session.left") == 2


async def test_no_sync_answer_before_the_letter_is_loaded(
    faulty: tuple[Running, FaultyLog],
) -> None:
    gw, log = faulty
    letter = await gw.create_letter("Already here")
    log.read_gate.clear()  # the load reads the letter's partition: hold it there
    client = await gw.client(letter)  # its sync step 1 is on the wire now
    await eventually(lambda: log.reads_waiting >= 1)
    assert client.received == []  # nothing answered against a half-loaded document
    log.read_gate.set()
    await client.synced.wait()
    from pycrdt import XmlFragment

    assert "Already here" in str(client.doc.get("default", type=XmlFragment))
    await client.close()


async def test_a_peer_holding_unlogged_edits_resyncs_once_the_gateway_logged_them(
    faulty: tuple[Running, FaultyLog],
) -> None:
    # Bob heard Alice's edit before its append failed and Alice never comes back: bob's resync
    # repeats her structs under her client id, which only works because the gateway appended
    # them itself (without the rescue bob is refused with 4403, client_id_not_owned).
    gw, log = faulty
    letter, alice, bob = await gw.two_editors()
    log.broken = True
    sent = await alice.insert("from alice ")
    await eventually(lambda: str(bob.text) == "from alice ")
    await bob.closed.wait()
    await alice.closed.wait()
    assert bob.close_code == LOG_UNAVAILABLE
    assert await gw.logged_text(letter) == ""

    # While the log is down, a reconnect is refused: nothing loads before the rescue lands.
    async with websockets.connect(gw.ws_url(letter, gw.token(user="bob"))) as early:
        with pytest.raises(websockets.ConnectionClosed):
            await early.recv()
    assert early.close_code == LOG_UNAVAILABLE

    log.broken = False
    # The rescue retries on its own; nobody has to connect for it to land.
    await eventually(lambda: _logged(gw, letter, "from alice "))
    rescued = [r for r in await gw.records(Topic.LETTERS, letter) if r.value == sent[0]]
    assert [dict(r.headers)["user"] for r in rescued] == [b"alice"]

    bob2 = await YClient.connect(gw.ws_url(letter, gw.token(user="bob")), doc=bob.doc)
    await bob2.synced.wait()
    await bob2.insert("and bob")
    await eventually(lambda: _logged(gw, letter, "from alice and bob"))
    assert bob2.close_code is None
    await bob2.close()


async def _logged(gw: Running, letter: str, text: str) -> bool:
    return await gw.logged_text(letter) == text


def _reads(client: YClient, text: str) -> bool:
    return str(client.text) == text


async def test_senders_stop_being_read_while_the_log_is_behind_and_nothing_is_lost(
    tmp_path: Path, read_path: str
) -> None:
    # A few one-character updates fill this buffer (gateway/live/intake.py, `cost`), and what
    # is held back fits under it once it drained: one pause.
    limit = 8192
    settings = Settings(data_dir=tmp_path / "steno", partitions=2, append_buffer_bytes=limit)
    async with faulty_gateway(settings) as (gw, log):
        first, alice, bob = await gw.two_editors()
        second, carol, dave = await gw.two_editors()
        log.gate.clear()  # the log stops taking appends
        typed = ""
        while (await gw.metrics())["gateway_unlogged_bytes"] <= limit:
            typed += "a"
            await alice.insert("a")
            await eventually(functools.partial(_reads, bob, typed))  # peers do not wait for the log
        assert len(typed) < 20
        # Full: each connection's next message is still handled, then it is read no more. A
        # connection of another letter gets its message through too; one that sends stays open.
        for sender, peer, seen in ((alice, bob, typed), (carol, dave, "")):
            await sender.insert("X")
            await eventually(functools.partial(_reads, peer, seen + "X"))
            await sender.insert("1")
            await sender.insert("2")
        sockets: list[Any] = [conn.ws._receive.__self__ for conn in gw.app.state.gateway.conns]
        if read_path == "direct":  # the held sockets are not read: "1" and "2" wait in the kernel
            await eventually(lambda: sum(s.read_paused for s in sockets) == 2)
        else:  # each held read loop keeps its "1" unhandled; uvicorn queued the "2" behind it
            await eventually(lambda: sum(s.queue.qsize() for s in sockets) == 2)
        assert (await gw.metrics())["gateway_intake_held"] == 2
        assert str(bob.text) == typed + "X" and str(dave.text) == "X"
        # A REST write is not taken either while the log is behind (gateway/live/writes.py).
        doc: Doc[Any] = Doc()
        doc.get("text", type=Text).insert(0, "rest")
        async with httpx.AsyncClient(base_url=gw.http) as http:
            behind = await http.post(
                f"/v1/letters/{second}/updates",
                content=doc.get_update(),
                headers={"Authorization": f"Bearer {gw.token(role='service')}"},
            )
        assert (behind.status_code, behind.json()) == (503, {"detail": "log behind"})
        assert behind.headers["retry-after"] == "1"
        log.gate.set()
        await eventually(lambda: str(bob.text) == typed + "X12" and str(dave.text) == "X12")
        await eventually(lambda: _logged(gw, first, typed + "X12"))  # peers hear it first
        await eventually(lambda: _logged(gw, second, "X12"))
        metrics = await gw.metrics()
        assert metrics["gateway_intake_held"] == 0 and metrics["gateway_intake_pauses_total"] == 1


async def test_reading_a_letter_while_the_log_cannot_be_read_is_503(
    faulty: tuple[Running, FaultyLog],
) -> None:
    """A letter no one holds here is rebuilt from the log for `GET /v1/letters/{id}`, and one
    this instance does not know is looked for there: with the log down that is 503, as
    documented, not a 500."""
    gw, log = faulty
    letter = await gw.create_letter("Dear Sir,")
    headers = {"Authorization": f"Bearer {gw.token()}"}
    async with httpx.AsyncClient(base_url=gw.http) as http:
        log.reads_broken = True
        down = await http.get(f"/v1/letters/{letter}", headers=headers)
        log.reads_broken = False
        up = await http.get(f"/v1/letters/{letter}", headers=headers)
    assert (down.status_code, down.json()) == (503, {"detail": "log unavailable"})
    assert down.headers["Retry-After"] == "1"  # a 503 says when to come back
    assert up.status_code == 200 and up.json()["content"] == "Dear Sir,"
    # A letter this instance does not know is looked for in the log: REST and handshake alike.
    topic = gw.settings.topic(Topic.LETTERS)
    partition = log.partition_for(topic, letter.encode())
    unknown = next(
        u for n in range(100) if log.partition_for(topic, (u := f"gone-{n}").encode()) == partition
    )
    log.reads_broken = True
    async with httpx.AsyncClient(base_url=gw.http) as http:
        assert (await http.get(f"/v1/letters/{unknown}", headers=headers)).status_code == 503
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(gw.ws_url(unknown, gw.token()))
    log.reads_broken = False
    assert refused.value.response.status_code == 503


async def test_reading_a_letter_whose_load_fails_here_is_log_unavailable(
    faulty: tuple[Running, FaultyLog],
) -> None:
    """A read of a letter this instance is loading waits for the load; if the load fails it
    is LogUnavailableError (503 over REST, as the test above shows), not a Refused (a 500)."""
    gw, log = faulty
    letter = await gw.create_letter("Dear Sir,")
    gateway = gw.app.state.gateway
    log.read_gate.clear()  # the load reads the letter's partition: hold it there
    client = await gw.client(letter)
    await eventually(lambda: log.reads_waiting >= 1)
    reading = asyncio.create_task(gateway.document(letter))
    for _ in range(20):  # nothing but the held load for it to wait on
        await asyncio.sleep(0)
    assert not reading.done()
    log.reads_broken = True
    log.read_gate.set()
    with pytest.raises(LogUnavailableError, match="could not be loaded"):
        await reading
    log.reads_broken = False
    await client.close()


def _edits(doc: Doc[Any], *values: str) -> list[bytes]:
    """One update per value, each appended to the doc's text after the one before."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=Text)
    for value in values:
        text.insert(len(text), value)
    doc.unobserve(sub)
    return updates


async def test_an_edit_typed_while_reconnecting_waits_for_the_step_2_that_carries_it(
    gw: Running,
) -> None:
    """A client sends its edits at once, its sync step 2 only in answer to our step 1: an edit
    typed as the connection comes back can reach us before the offline edits it builds on.
    It is dropped, not refused with 4400 (after which y-websocket 3.1 never reconnects): the
    step 2 carries it. Once the step 2 has come, such an update is malformed again."""
    letter = await gw.create_letter()
    doc: Doc[Any] = Doc()
    _, typed = _edits(doc, "offline;", "typed as it reconnects")  # the first: never sent
    ws = await websockets.connect(gw.ws_url(letter, gw.token(user="alice")))
    greeting = await ws.recv()  # our step 1, not answered yet
    assert greeting[:2] == b"\x00\x00"
    await ws.send(create_update_message(typed))  # builds on `offline`, which we lack
    await ws.send(create_sync_message(doc))  # a step 1 of its own: answered, so still open
    assert (await ws.recv())[:2] == b"\x00\x01"
    metrics = await gw.metrics()
    assert metrics['gateway_refusals_total{reason="update_before_sync"}'] == 1
    step2 = bytes([0, 1]) + write_var_uint(len(doc.get_update())) + doc.get_update()
    await ws.send(step2)
    await eventually(lambda: _logged(gw, letter, "offline;typed as it reconnects"))
    orphan: Doc[Any] = Doc()
    _, dangling = _edits(orphan, "never sent;", "after the step 2")
    await ws.send(create_update_message(dangling))
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.close_code == MALFORMED
