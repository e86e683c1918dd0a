"""Echo is the acknowledgement; a failed append closes the letter's clients with 4503 and
their resync on reconnect brings every typed update into the log."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from gateway.errors import LOG_UNAVAILABLE
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.faults import FaultyLog, faulty_gateway
from tests.gateway.harness import Running, YClient
from tests.support import eventually


@pytest_asyncio.fixture(loop_scope="session")
async def faulty(tmp_path: Path) -> AsyncIterator[tuple[Running, FaultyLog]]:
    async with faulty_gateway(Settings(data_dir=tmp_path / "steno", partitions=2)) as pair:
        yield pair


async def test_peers_and_sender_get_update_only_after_the_append(
    faulty: tuple[Running, FaultyLog],
) -> None:
    # Peers wait for the log too (issue 9): after a failed append no client may hold, and
    # then relay, another user's unlogged structs (gateway/ownership.py).
    gw, log = faulty
    letter = await gw.create_letter()
    alice, bob = await gw.client(letter, user="alice"), await gw.client(letter, user="bob")
    await alice.synced.wait()
    await bob.synced.wait()
    acked = len(alice.updates)
    log.gate.clear()
    await alice.insert("hello")
    await eventually(lambda: log.waiting == 1)
    assert len(alice.updates) == acked  # no echo yet: not durable
    assert str(bob.text) == ""  # nor fan-out
    assert await gw.logged_text(letter) == ""
    log.gate.set()
    await eventually(lambda: str(bob.text) == "hello")
    await eventually(lambda: len(alice.updates) == acked + 1)
    assert alice.updates[-1] == (await gw.records(Topic.LETTERS, letter))[-1].value
    assert await gw.logged_text(letter) == "hello"


async def test_append_failure_closes_4503_and_resync_loses_nothing(
    faulty: tuple[Running, FaultyLog],
) -> None:
    gw, log = faulty
    letter = await gw.create_letter()
    alice, bob = await gw.client(letter, user="alice"), await gw.client(letter, user="bob")
    await alice.synced.wait()
    await bob.synced.wait()
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
