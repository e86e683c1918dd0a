"""Roles: read-only connections are refused edits but still receive; token expiry closes 4401."""

import functools
import time
from pathlib import Path
from typing import Any

from pycrdt import Text

from eventlog.records import Record
from gateway.errors import TOKEN_EXPIRED
from schemas.events import Topic
from schemas.settings import Settings
from tests.collab.channel_helpers import app
from tests.gateway.harness import Running, YClient, running_gateway, types_of
from tests.support import eventually


def _denials(client: YClient) -> list[str]:
    return client.denied


def _has_bangs(client: YClient, n: int) -> bool:
    return str(client.text).count("!") == n


async def test_read_only_roles_are_refused_but_keep_receiving(gw: Running) -> None:
    letter = await gw.create_letter()
    editor = await gw.client(letter, user="ed")
    await editor.synced.wait()
    for role in ("viewer", "commenter", "auditor"):
        reader = await gw.client(letter, user=f"{role}-1", role=role)
        await reader.synced.wait()
        await reader.insert(f"by {role}")
        await eventually(functools.partial(_denials, reader))
        assert "read-only" in reader.denied[0]
        before = str(editor.text)
        await editor.insert("!")
        # The reader's own refused text stays in its local doc; the editor's "!"s arrive.
        expected = len(str(editor.text))
        await eventually(functools.partial(_has_bangs, reader, expected))
        assert f"by {role}" not in str(editor.text) and str(editor.text) == before + "!"
        assert not reader.closed.is_set()
        await reader.close()
    records = await gw.records(Topic.LETTERS, letter)
    authors = {dict(r.headers)["user"] for r in records if dict(r.headers)["type"] == b"doc.update"}
    assert authors == {b"ed"}


async def test_read_only_sync_step2_with_content_is_not_applied(gw: Running) -> None:
    letter = await gw.create_letter()
    viewer = await gw.client(letter, role="viewer")
    viewer.doc.get("text", type=Text).insert(0, "offline edit")  # shows up in its step 2
    await eventually(lambda: viewer.denied)
    editor = await gw.client(letter, user="ed")
    await editor.synced.wait()
    assert str(editor.text) == ""
    assert "doc.update" not in types_of(await gw.records(Topic.LETTERS, letter))


async def test_token_expiry_closes_with_4401(gw: Running) -> None:
    letter = await gw.create_letter()
    client = await gw.client(letter, ttl_s=2)
    await client.closed.wait()  # (under load it may expire before the initial sync completes)
    assert client.close_code == TOKEN_EXPIRED
    assert (
        'gateway_refusals_total{reason="token_expired"} 1.0'
        in gw.app.state.gateway.ctx.metrics.render().decode()
    )


async def test_a_token_let_in_by_the_leeway_lasts_until_the_leeway_ends(tmp_path: Path) -> None:
    """`jwt_leeway_s` (clock skew with the token's issuer) admits a token that expired a moment
    ago by our clock: its session runs until the same leeway ends, not a 4401 at once (which a
    stock provider takes as final)."""
    # A leeway of its own, 6 s: the token is up to 2 s old when made (whole seconds), and the
    # handshake must come within the rest (the fixture's 2 s was missed under a full machine).
    settings = Settings(data_dir=tmp_path / "steno", partitions=1, jwt_leeway_s=6)
    async with running_gateway(settings) as gw:
        letter = await gw.create_letter()
        exp = int(time.time()) - 1
        client = await gw.client(letter, ttl_s=-1)
        await eventually(lambda: client.synced.is_set() or client.closed.is_set())
        assert client.synced.is_set(), f"closed ({client.close_code}) before the initial sync"
        await client.closed.wait()
        assert client.close_code == TOKEN_EXPIRED
        assert time.time() >= exp + gw.settings.jwt_leeway_s - 0.1


async def test_a_token_renewed_on_the_app_channel_keeps_the_connection_open(
    gw: Running,
) -> None:
    """`auth.renew` with a later token of the same user, firm and role: no 4401 at the first
    token's expiry, no reconnect. Another identity, or no valid token, renews nothing."""
    letter = await gw.create_letter()
    first = gw.token(user="alice", ttl_s=5)
    client = await YClient.connect(gw.ws_url(letter, first, events="1"))
    control = await YClient.connect(gw.ws_url(letter, first))  # the same token, not renewed
    await client.synced.wait()
    (conn,) = [c for c in gw.app.state.gateway.conns if c.events]
    for n, (token, status) in enumerate(
        [
            ("not-a-token", 401),
            (gw.token(user="mallory", ttl_s=60), 403),
            (gw.token(user="alice", role="viewer", ttl_s=60), 403),  # a role change: reconnect
        ]
    ):
        await client.ws.send(app({"type": "auth.renew", "id": f"bad{n}", "token": token}))
        assert (await _answer(client, f"bad{n}"))["status"] == status
    later = gw.token(user="alice", ttl_s=60)
    await client.ws.send(app({"type": "auth.renew", "id": "ok", "token": later}))
    renewed = (await _answer(client, "ok"))["result"]
    assert renewed["expires_at"].endswith("Z") and conn.claims.exp > time.time() + 50
    # The first token expires: the connection that kept it is closed, the renewed one is not.
    await control.closed.wait()
    assert control.close_code == TOKEN_EXPIRED
    heard = len(client.updates)
    await client.insert("still here")
    await eventually(lambda: len(client.updates) > heard)  # its echo: logged, so served
    assert not client.closed.is_set() and conn in gw.app.state.gateway.conns
    metrics = await gw.metrics()
    assert metrics["gateway_token_renewals_total"] == 1
    assert metrics['gateway_refusals_total{reason="renewal_other_identity"}'] == 2
    await client.close()


async def _answer(client: YClient, request: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((m for m in client.app if m.get("id") == request), None)

    return await eventually(found)


async def test_opted_in_clients_get_session_events_and_stock_clients_do_not(gw: Running) -> None:
    letter = await gw.create_letter()
    watcher = await gw.client(letter, user="watcher", events=1)
    stock = await gw.client(letter, user="stock")
    await watcher.synced.wait()
    await stock.synced.wait()
    joiner = await gw.client(letter, user="joiner", name="Jo")
    await joiner.synced.wait()
    await joiner.close()
    await eventually(lambda: [e["type"] for e in watcher.app][-1:] == ["session.left"])
    joined = [e for e in watcher.app if e["type"] == "session.joined"]
    assert {"id": "joiner", "name": "Jo"}.items() <= joined[-1]["user"].items()
    assert stock.app == []
    assert all(m[0] != 100 for m in stock.received)


async def test_empty_updates_are_neither_logged_nor_relayed(gw: Running) -> None:
    letter = await gw.create_letter()
    sender, peer = await gw.client(letter, user="a"), await gw.client(letter, user="b")
    await sender.synced.wait()
    await peer.synced.wait()
    received = len(peer.received)
    await sender.ws.send(b"\x00\x02\x02\x00\x00")  # an update message carrying `00 00`
    await sender.insert("x")  # a real one after it, to know the empty one was processed
    await eventually(lambda: str(peer.text) == "x")
    assert len(peer.received) == received + 1

    async def logged() -> list[Record] | None:
        # Peers hear an update as it is queued for the log: its record may come later. The
        # log keeps the letter's order, so once "x" is in it the empty one would be too.
        records = await gw.records(Topic.LETTERS, letter)
        return records if any(dict(r.headers)["type"] == b"doc.update" for r in records) else None

    records = await eventually(logged)
    assert all(r.value != b"\x00\x00" for r in records)
