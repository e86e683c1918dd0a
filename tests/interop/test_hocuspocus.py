"""TipTap's HocuspocusProvider (npm @hocuspocus/provider 4.8, and 3.4 as TipTap 2 apps have it)
on `/v1/hocuspocus`, beside stock y-websocket clients on `/v1/{room}`: the same letters, the
same rules."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from schemas.envelope import decode_record
from schemas.events import Topic
from tests.gateway.harness import Running
from tests.interop.driver import NodeClient
from tests.support import eventually

pytestmark = pytest.mark.slow
Open = Callable[..., Awaitable[NodeClient]]


@pytest.fixture(params=[4, 3, 2], ids=["provider-4", "provider-3", "provider-2"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest_asyncio.fixture(loop_scope="session")
async def clients(gw: Running, major: int) -> AsyncIterator[tuple[Open, Open]]:
    opened: list[NodeClient] = []

    async def hocuspocus(
        letter_id: str, synced: bool = True, tokens: list[str] | None = None, **claims: Any
    ) -> NodeClient:
        client = await NodeClient.hocuspocus(gw, letter_id, major=major, tokens=tokens, **claims)
        opened.append(client)
        if synced:
            await client.event("sync", synced=True)
        return client

    async def y_websocket(letter_id: str, **claims: Any) -> NodeClient:
        client = await NodeClient.open(gw, letter_id, **claims)
        opened.append(client)
        await client.event("sync", synced=True)
        return client

    yield hocuspocus, y_websocket
    for client in opened:
        await client.quit()


async def test_hocuspocus_and_y_websocket_co_edit(gw: Running, clients: tuple[Open, Open]) -> None:
    hocuspocus, y_websocket = clients
    letter = await gw.create_letter("Dear Sir,\nPay up.")
    tiptap = await hocuspocus(letter, user="alice")
    assert (await tiptap.event("authenticated"))["scope"] == "read-write"
    assert (await tiptap.call("read"))["xml"] == "Dear Sir,\nPay up."  # the initial sync
    stock = await y_websocket(letter, user="bob")
    await tiptap.call("insert", index=0, value="hello")
    await stock.call("waitText", equals="hello")
    await stock.call("paragraph", value="Regards")
    await tiptap.call("waitXml", equals="Dear Sir,\nPay up.\nRegards")
    await tiptap.call("burst", n=100)
    expected = "hello" + "".join(f"{i};" for i in range(100))
    await stock.call("waitText", equals=expected)
    # Every change acknowledged (a sync status per update, sent once it is in the log): the
    # provider has no unsynced changes left, and the log holds alice's edits as hers.
    await tiptap.call("waitSaved")
    # A provider that syncs again (forceSync, or its forceSyncInterval) counts one unsynced
    # change until the server's own step 1 is answered and that answer acknowledged.
    assert (await tiptap.call("forceSync"))["unsynced"] == 1
    await tiptap.call("waitSaved")
    records = await gw.records(Topic.LETTERS, letter)
    updates = [decode_record(r.key, r.value, r.headers) for r in records]
    by_alice = [e for e in updates if e.type == "doc.update" and e.envelope.user == "alice"]
    assert len(by_alice) >= 101  # the insert and the burst (a step 2 may add one)
    assert {e.envelope.user for e in updates if e.type == "session.joined"} == {"alice", "bob"}


async def test_late_hocuspocus_joiner_gets_the_whole_letter(
    gw: Running, clients: tuple[Open, Open]
) -> None:
    hocuspocus, y_websocket = clients
    letter = await gw.create_letter("Intro")
    stock = await y_websocket(letter, user="alice")
    await stock.call("insert", index=0, value="typed by alice;")
    await stock.call("paragraph", value="More")
    other = await y_websocket(letter, user="bob")
    await other.call("waitText", equals="typed by alice;")
    late = await hocuspocus(letter, user="carol", synced=False)
    synced = await late.event("sync", synced=True)
    assert synced["text"] == "typed by alice;" and synced["xml"] == "Intro\nMore"
    await late.call("waitSaved")  # its own step 2 is acknowledged too


async def test_presence_crosses_both_framings(gw: Running, clients: tuple[Open, Open]) -> None:
    hocuspocus, y_websocket = clients
    letter = await gw.create_letter()
    tiptap = await hocuspocus(letter, user="alice", name="Alice A")
    stock = await y_websocket(letter, user="bob", name="Bob B")
    await tiptap.call("awareness", state={"cursor": 3, "user": {"name": "Mallory"}})
    seen = (await stock.call("waitPeers", count=1))["states"]
    client_id, state = seen[0]
    assert client_id == tiptap.client_id and state["cursor"] == 3
    assert state["user"]["name"] == "Alice A" and state["user"]["id"] == "alice"  # stamped
    await stock.call("awareness", state={"cursor": 1})
    theirs = (await tiptap.call("waitPeers", count=1))["states"]
    assert theirs[0][1]["user"]["name"] == "Bob B"
    await tiptap.quit()  # destroy(): the provider closes the document (and its process ends)
    await stock.call("waitPeers", count=0)


async def test_read_only_and_refused_documents(gw: Running, clients: tuple[Open, Open]) -> None:
    hocuspocus, y_websocket = clients
    letter = await gw.create_letter("Text")
    editor = await y_websocket(letter, user="alice")
    viewer = await hocuspocus(letter, user="vic", role="viewer")
    assert (await viewer.event("authenticated"))["scope"] == "readonly"
    await viewer.call("insert", index=0, value="by viewer")
    await editor.call("insert", index=0, value="!")
    # It still receives (its own refused text stays in its local doc, on either side of "!").
    assert "!" in (await viewer.call("waitLength", length=len("!by viewer")))["text"]
    assert (await viewer.call("unsynced"))["unsynced"] >= 1  # its edit was not applied
    assert (await editor.call("read"))["text"] == "!"
    outsider = await hocuspocus(letter, user="eve", firm="firm-b", synced=False)
    assert (await outsider.event("denied"))["reason"] == "forbidden"
    await outsider.call("insert", index=0, value="from another firm")  # dropped, not applied
    await editor.call("insert", index=1, value="?")
    assert "!?" in (await viewer.call("waitLength", length=len("!?by viewer")))["text"]
    records = await gw.records(Topic.LETTERS, letter)
    events = [decode_record(r.key, r.value, r.headers) for r in records]
    assert {e.envelope.user for e in events if e.type == "doc.update"} == {"u1", "alice"}
    assert "eve" not in {e.envelope.user for e in events}


async def test_offline_edits_resync_and_are_acknowledged(
    gw: Running, clients: tuple[Open, Open], major: int
) -> None:
    """Edits made before connecting reach the server in the provider's sync step 2; that step 2
    is acknowledged once logged, so the provider shows them saved."""
    _, y_websocket = clients
    letter = await gw.create_letter()
    stock = await y_websocket(letter, user="bob")
    tiptap = await NodeClient.spawn()
    try:
        await tiptap.call("insert", index=0, value="typed offline")
        await tiptap.attach_hocuspocus(gw, letter, major, user="alice")
        await stock.call("waitText", equals="typed offline")
        await tiptap.call("waitSaved")
    finally:
        await tiptap.quit()
    assert await gw.logged_text(letter) == "typed offline"


async def _logged(gw: Running, letter: str, text: str) -> bool:
    return await gw.logged_text(letter) == text


def _alice_expires_after(gw: Running, when: float) -> bool:
    (session,) = [c for c in gw.app.state.gateway.conns if c.claims.sub == "alice"]
    return session.claims.exp > when


async def test_a_provider_renews_its_token_in_band(
    gw: Running, clients: tuple[Open, Open], major: int
) -> None:
    """Asked before its token expires, a 3.x or 4.x provider calls its token function again and
    sends the result: the session goes on. 2.x knows no such request: its session ends at
    expiry with Hocuspocus' reset code (after 4401 it would never reconnect), and it reconnects
    with the function's next token."""
    hocuspocus, y_websocket = clients
    letter = await gw.create_letter()
    stock = await y_websocket(letter, user="bob")
    tokens = [gw.token(user="alice", ttl_s=ttl) for ttl in (4, 8, 300)]
    tiptap = await hocuspocus(letter, tokens=tokens)
    if major == 2:
        assert (await tiptap.event("close"))["code"] == 4205  # reset: it reconnects
        await tiptap.event("token", n=1)
    else:
        await tiptap.event("token", n=2)  # asked twice: each token before its expiry
        # The session lasts until the third token's expiry once the gateway verified it.
        await eventually(lambda: _alice_expires_after(gw, time.time() + 200))
        assert not [e for e in tiptap.events if e["event"] in ("close", "denied")]
    await tiptap.call("insert", index=0, value="after the first token")
    await stock.call("waitText", equals="after the first token")
    await tiptap.call("waitSaved")  # in the log, after the session's join
    records = await gw.records(Topic.LETTERS, letter)
    events = [decode_record(r.key, r.value, r.headers) for r in records]
    joined = [e for e in events if e.type == "session.joined" and e.envelope.user == "alice"]
    assert len(joined) >= 2 if major == 2 else len(joined) == 1


async def test_tiptap_collab_provider_keeps_its_threads_and_users_in_the_letter(
    gw: Running,
) -> None:
    """TipTap Collab's `TiptapCollabProvider` (as @hocuspocus/provider 2.x bundles it; later
    versions are on TipTap's private registry) pointed here with `baseUrl`. Its comment threads
    and its user mapping (Y.PermanentUserData) are Yjs types of their own in the document: the
    gateway carries and logs them like any content, and stock clients hold them too."""
    letter = await gw.create_letter("Dear Sir,")
    collab = await NodeClient.spawn()
    opened = [collab]
    try:
        stock = await NodeClient.open(gw, letter, user="bob")
        opened.append(stock)
        await stock.event("sync", synced=True)
        await collab.call(
            "tiptapCollab",
            baseUrl=f"ws://127.0.0.1:{gw.port}/v1/hocuspocus",
            name=f"letter-{letter}",
            token=gw.token(user="alice"),
            user="alice",
        )
        assert (await collab.event("sync", synced=True))["xml"] == "Dear Sir,"
        await collab.call("insert", index=0, value="Attn:")
        await collab.call("comment", content="Cite the statute")
        await stock.call("waitText", equals="Attn:")
        threads = (await stock.call("waitThreads", count=1))["threads"]
        assert threads[0]["comments"][0]["content"] == "Cite the statute"
        # In the log. (Not waitSaved: this provider writes its user mapping before it connects,
        # and 2.x counts every acknowledgement, below zero too, so whether that early update
        # reaches us before or after the auth decides whether its count ever returns to 0.)
        await eventually(lambda: _logged(gw, letter, "Attn:"))
        late = await NodeClient.open(gw, letter, user="carol")
        opened.append(late)
        await late.event("sync", synced=True)
        held = await late.call("threads")
        assert [t["data"] for t in held["threads"]] == [{"section": "intro"}]
        assert "alice" in held["users"]  # whose Yjs client ids are whose, for TipTap's UI
    finally:
        for client in opened:
            await client.quit()
    records = await gw.records(Topic.LETTERS, letter)
    events = [decode_record(r.key, r.value, r.headers) for r in records]
    assert "alice" in {e.envelope.user for e in events if e.type == "doc.update"}


async def test_a_sync_over_the_state_request_budget_still_settles(
    gw: Running, clients: tuple[Open, Open]
) -> None:
    """A provider counts its step 1 as an unsynced change until it is answered. Past the
    connection's budget for requests of state (5, then one per 5 s) the step 1 waits for the
    budget instead of going unanswered, so the provider does not show unsaved changes for good."""
    hocuspocus, _ = clients
    letter = await gw.create_letter()
    tiptap = await hocuspocus(letter, user="alice")  # its first step 1: one of the 5
    await tiptap.call("waitSaved")
    for _ in range(4):  # the rest of the budget
        await tiptap.call("forceSync")
        await tiptap.call("waitSaved")
    assert (await tiptap.call("forceSync"))["unsynced"] == 1  # over the budget
    await tiptap.call("waitSaved", timeout=15_000)  # answered once the budget allows
