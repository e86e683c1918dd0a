"""Stock Yjs clients (npm yjs + y-websocket's WebsocketProvider) against a live gateway."""

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from eventlog.records import Record
from schemas.envelope import decode_record
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, running_gateway
from tests.interop.driver import HERE, NodeClient
from tests.support import eventually

pytestmark = pytest.mark.slow
Open = Callable[..., Awaitable[NodeClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def node(gw: Running) -> AsyncIterator[Open]:
    opened: list[NodeClient] = []

    async def open_client(letter_id: str, **claims: Any) -> NodeClient:
        client = await NodeClient.open(gw, letter_id, **claims)
        opened.append(client)
        await client.event("sync", synced=True)
        return client

    yield open_client
    for client in opened:
        await client.quit()


async def test_co_edit_text_and_tiptap_fragment(gw: Running, node: Open) -> None:
    letter = await gw.create_letter("Dear Sir,\nPay up.")
    a = await node(letter, user="alice")
    b = await node(letter, user="bob")
    assert (await b.call("read"))["xml"] == "Dear Sir,\nPay up."
    await a.call("insert", index=0, value="hello")
    await b.call("waitText", equals="hello")
    await b.call("paragraph", value="Regards")
    await a.call("waitXml", equals="Dear Sir,\nPay up.\nRegards")


async def test_concurrent_inserts_converge(gw: Running, node: Open) -> None:
    letter = await gw.create_letter()
    a, b = await node(letter, user="alice"), await node(letter, user="bob")
    await b.call("disconnect")
    await a.call("insert", index=0, value="AAA")
    await b.call("insert", index=0, value="BBB")  # concurrent: b has not seen a's insert
    await a.call("waitText", equals="AAA")
    await b.call("reconnect")
    text_a = (await a.call("waitLength", length=6))["text"]
    text_b = (await b.call("waitLength", length=6))["text"]
    assert text_a == text_b
    assert text_a in ("AAABBB", "BBBAAA")


async def test_burst_of_200_arrives_complete_and_in_order(gw: Running, node: Open) -> None:
    letter = await gw.create_letter()
    a, b = await node(letter, user="alice"), await node(letter, user="bob")
    await a.call("burst", n=200)
    expected = "".join(f"{i};" for i in range(200))
    await b.call("waitText", equals=expected)
    history = (await b.call("read"))["history"]
    assert history[-1] == expected
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(history))
    assert len(set(history)) == len(history)

    async def logged() -> list[Record]:
        records = await gw.records(Topic.LETTERS, letter)
        updates = [r for r in records if dict(r.headers)["type"] == b"doc.update"]
        return updates if len(updates) >= 200 else []  # peers may hear them before the append

    updates: list[Record] = await eventually(logged)
    assert len(updates) == 200
    assert all(decode_record(r.key, r.value, r.headers).envelope.user == "alice" for r in updates)


async def test_a_burst_over_the_frame_rate_is_paced_and_the_provider_stays(
    tmp_path: Path, node_modules: Path
) -> None:
    """A stock provider sends a burst at once (a paste of many steps, a resync): over the
    gateway's frame rate it is read at the rate, every update arrives in order, and the
    provider keeps its connection (y-websocket 3.1 never reconnects after a 4429)."""
    settings = Settings(data_dir=tmp_path / "steno", rate_messages_per_s=100, rate_burst=20)
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        a = await NodeClient.open(gw, letter, user="alice")
        b = await NodeClient.open(gw, letter, user="bob")
        try:
            await a.event("sync", synced=True)
            await b.event("sync", synced=True)
            await a.call("burst", n=200)  # 200 messages: 180 or so paced, ~1.8 s
            await b.call("waitText", equals="".join(f"{i};" for i in range(200)))
            assert not [e for e in a.events if e["event"] == "close"]  # one connection throughout
            metrics = await gw.metrics()
            assert metrics["gateway_messages_paced_total"] >= 150
            assert 'gateway_refusals_total{reason="rate_limited"}' not in metrics
        finally:
            await a.quit()
            await b.quit()


async def test_late_joiner_gets_full_state_in_initial_sync(gw: Running, node: Open) -> None:
    letter = await gw.create_letter("Intro")
    a = await node(letter, user="alice")
    await a.call("insert", index=0, value="typed by alice;")
    await a.call("paragraph", value="More")
    b = await node(letter, user="bob")
    await b.call("waitText", equals="typed by alice;")  # before: a must have been acked
    late = await NodeClient.open(gw, letter, user="carol")
    try:
        synced = await late.event("sync", synced=True)
        assert synced["text"] == "typed by alice;"
        assert synced["xml"] == "Intro\nMore"
    finally:
        await late.quit()


async def test_awareness_appears_and_disappears(gw: Running, node: Open) -> None:
    letter = await gw.create_letter()
    a = await node(letter, user="alice", name="Alice A")
    b = await node(letter, user="bob")
    await a.call("awareness", state={"cursor": 3, "user": {"name": "Mallory"}})
    seen = (await b.call("waitPeers", count=1))["states"]
    client_id, state = seen[0]
    assert client_id == a.client_id
    assert state["cursor"] == 3
    assert state["user"]["name"] == "Alice A" and state["user"]["id"] == "alice"
    await a.quit()
    await b.call("waitPeers", count=0)


async def test_a_backend_drafting_over_rest_reaches_stock_clients(gw: Running, node: Open) -> None:
    """Stock yjs on both sides of the REST door: a backend posts the update its own Y.Doc made
    (tests/interop/backend.mjs), and an editor's WebsocketProvider shows the paragraph."""
    letter = await gw.create_letter("Dear Sir,")
    editor = await node(letter, user="alice")
    token = gw.token(user="drafter", role="service")
    backend = await asyncio.create_subprocess_exec(
        "node", str(HERE / "backend.mjs"), gw.http, letter, token, "We claim damages.",
        cwd=HERE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(backend.communicate(), 20)
    assert json.loads(out)["status"] == 200
    await editor.call("waitXml", equals="Dear Sir,\nWe claim damages.")
