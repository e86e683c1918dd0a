"""Two gateway instances sharing the Kafka log (Tansu): edits and presence cross both ways,
creates are readable everywhere at once, and loading while edits flow converges."""

import asyncio
from typing import Any

import httpx
from pycrdt import Awareness, Decoder, Doc, Text, create_update_message

from gateway.wire import hocuspocus as hp
from tests.gateway.harness import Running, YClient
from tests.gateway.hocuspocus_client import HpClient, edit
from tests.support import eventually


def _states(client: YClient) -> dict[int, Any]:
    current: dict[int, Any] = {}
    for entries in client.awareness:
        for cid, _clock, state in entries:
            current[cid] = state
    return {cid: state for cid, state in current.items() if state is not None}


async def test_edits_and_presence_cross_both_ways(
    pair_without_redis: tuple[Running, Running],
) -> None:
    a, b = pair_without_redis
    letter = await a.create_letter()
    on_b = await b.client(letter, user="bob")  # read-your-writes: b finds a's create at once
    on_a = await a.client(letter, user="alice", name="Alice")
    await on_a.synced.wait()
    await on_b.synced.wait()
    await on_a.insert("from a;")
    await eventually(lambda: str(on_b.text) == "from a;")
    await on_b.insert("from b;")
    await eventually(lambda: str(on_a.text) == "from a;from b;")

    mine = Awareness(on_a.doc)
    await on_a.set_awareness(mine, {"cursor": 5})
    await eventually(lambda: mine.client_id in _states(on_b))
    assert _states(on_b)[mine.client_id]["user"]["name"] == "Alice"
    theirs = Awareness(on_b.doc)
    await on_b.set_awareness(theirs, {"cursor": 1})
    await eventually(lambda: theirs.client_id in _states(on_a))
    await on_a.close()
    await eventually(lambda: mine.client_id not in _states(on_b))
    await on_b.close()


async def test_loading_while_edits_flow_on_the_other_instance(
    pair_without_redis: tuple[Running, Running],
) -> None:
    a, b = pair_without_redis
    letter = await a.create_letter()
    writer = await a.client(letter, user="alice")
    await writer.synced.wait()

    async def type_away() -> None:
        for i in range(60):
            await writer.insert(f"{i};")
            if i == 20:
                joined.set()

    joined = asyncio.Event()
    typing = asyncio.create_task(type_away())
    await joined.wait()
    late = await b.client(letter, user="bob")  # loads on b while a keeps appending
    await typing
    expected = "".join(f"{i};" for i in range(60))
    await eventually(lambda: str(writer.text) == expected)
    await eventually(lambda: str(late.text) == expected, timeout=20)
    await writer.close()
    await late.close()


async def test_an_update_written_over_rest_on_one_instance_reaches_editors_on_the_other(
    pair_without_redis: tuple[Running, Running],
) -> None:
    a, b = pair_without_redis
    letter = await a.create_letter()
    on_b = await b.client(letter, user="bob")
    await on_b.synced.wait()
    doc: Doc[Any] = Doc()
    doc.get("text", type=Text).insert(0, "drafted on a")
    headers = {"Authorization": f"Bearer {a.token(user='drafter', role='service')}"}
    async with httpx.AsyncClient(base_url=a.http) as http:
        r = await http.post(
            f"/v1/letters/{letter}/updates", content=doc.get_update(), headers=headers
        )
    assert r.status_code == 200
    await eventually(lambda: str(on_b.text) == "drafted on a")
    await on_b.close()


async def test_a_hocuspocus_provider_and_a_y_websocket_client_on_two_instances(
    pair_without_redis: tuple[Running, Running],
) -> None:
    """The Hocuspocus framing on one instance, y-websocket on the other: edits cross both ways,
    and the provider's edit is acknowledged once it is in Kafka."""
    a, b = pair_without_redis
    letter = await a.create_letter()
    on_b = await b.client(letter, user="bob")
    await on_b.synced.wait()
    tiptap = await HpClient.connect(a)
    address = f"letter-{letter}"
    doc = await tiptap.synced(address, a.token(user="alice"))
    await tiptap.send(address, create_update_message(edit(doc, "from tiptap on a;")))
    assert (await tiptap.next(address, hp.SYNC_STATUS)).body == b"\x01"
    assert "from tiptap on a;" in await b.logged_text(letter)  # acknowledged: in Kafka
    await eventually(lambda: str(on_b.text) == "from tiptap on a;")
    mark = len(tiptap.received)
    await on_b.insert("from b;")
    got = await tiptap.next(address, hp.SYNC, mark)
    doc.apply_update(Decoder(got.body[1:]).read_message() or b"")
    assert str(doc.get("text", type=Text)) == "from tiptap on a;from b;"
    await tiptap.close()
    await on_b.close()


async def test_a_letter_as_large_as_allowed_crosses_kafka(
    pair_without_redis: tuple[Running, Running],
) -> None:
    """A letter created with close to the 1,000,000 characters REST allows (a ~2 MB first
    update, over aiokafka's default 1 MiB request) is logged, and read on the other instance;
    a near-1 MiB edit is acknowledged."""
    a, b = pair_without_redis
    content = "\n".join(["x" * 49] * 20_000)[:999_999]
    letter = await a.create_letter(content)
    async with httpx.AsyncClient(base_url=b.http, timeout=30) as http:
        headers = {"Authorization": f"Bearer {b.token()}"}
        r = await http.get(f"/v1/letters/{letter}", headers=headers)
        assert r.status_code == 200 and r.json()["content"] == content
    client = await b.client(letter, user="alice")
    await client.synced.wait()
    acked = len(client.updates)
    # Its frame just under the 1 MiB frame limit; the record, with its key and headers, over
    # aiokafka's default request size (1 MiB), which refused it.
    [sent] = await client.insert("y" * 1_048_540)
    assert len(create_update_message(sent)) <= b.settings.max_message_bytes < len(sent) + 300
    await eventually(lambda: len(client.updates) > acked, timeout=20)  # its echo: logged
    assert not client.closed.is_set()
    await client.close()
