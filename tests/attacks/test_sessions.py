"""Attacks that need a session or a victim: type nesting over many updates, client-id squatting
and exhaustion, awareness spoofing, read-only bypass, a permessage-deflate bomb (issue 9)."""

import asyncio
import base64
import itertools
import os
import re
import struct
import zlib
from typing import Any

from pycrdt import Awareness, Doc, Text, merge_updates

from gateway.errors import FORBIDDEN, MALFORMED, TOO_LARGE
from schemas.events import Topic
from tests.attacks.harness import Scene, attack_window, close_code_after, open_attacker
from tests.gateway.harness import YClient, running_gateway
from tests.preparse import lib0
from tests.preparse.hostile_updates import map_chain_update
from tests.support import eventually


def _entries(messages: list[list[tuple[int, int, Any]]]) -> list[tuple[int, int, Any]]:
    return list(itertools.chain.from_iterable(messages))


async def _log_text(scene: Scene) -> str:
    records = await scene.gw.records(Topic.LETTERS, scene.letter_a)
    updates = [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]
    doc: Doc[Any] = Doc()
    doc.apply_update(merge_updates(*updates))
    return str(doc.get("text", type=Text))


async def test_map_chain_over_small_updates(scene: Scene) -> None:
    legit = [lib0.sync(2, map_chain_update(level)) for level in range(63)]  # depth 2..64
    hostile = map_chain_update(63)
    before = scene.refusals_of("depth_exceeded")
    async with attack_window(scene, "map_chain"):
        attacker = await open_attacker(scene.attacker_url())
        assert await close_code_after(attacker, *legit, lib0.sync(2, hostile)) == MALFORMED
    assert scene.refusals_of("depth_exceeded") == before + 1
    logged = await scene.logged_by("mallory")
    assert len(logged) == 63 and hostile not in logged
    await scene.barrier()
    assert not any(hostile in m for m in scene.victim.received)
    assert len(scene.foreign_updates(scene.victim.received)) <= 63  # the legit levels only


async def test_client_id_squatting(scene: Scene) -> None:
    victim = scene.victim.doc.client_id
    known = len(str(scene.victim.text))  # the victim's clock: one per character typed
    squat = lib0.update((victim, known, [lib0.string_item(victim, known - 1, "EVIL")]))
    before = scene.refusals_of("client_id_not_owned")
    async with attack_window(scene, "client_id_squatting"):
        attacker = await open_attacker(scene.attacker_url())
        assert await close_code_after(attacker, lib0.sync(2, squat)) == FORBIDDEN
    assert scene.refusals_of("client_id_not_owned") == before + 1
    assert await scene.logged_by("mallory") == []
    # The record is in Redis, so another instance (or this one after a restart) knows it.
    redis = scene.gw.app.state.gateway.ctx.redis
    assert await redis.hget(f"clientid:{scene.letter_a}", str(victim)) == b"alice"
    # The victim's later edits, at exactly the clocks the squatter wanted, still converge.
    await scene.victim.insert(" world")
    peer = await scene.gw.client(scene.letter_a, user="bob")
    await peer.synced.wait()
    expected = str(scene.victim.text)
    assert "EVIL" not in expected
    await eventually(lambda: str(peer.text) == expected)

    async def logged() -> bool:
        return await _log_text(scene) == expected

    await eventually(logged)
    await peer.close()


async def test_same_user_reconnecting_keeps_its_client_id(scene: Scene) -> None:
    doc = scene.victim.doc
    again = await YClient.connect(scene.gw.ws_url(scene.letter_a, scene.gw.token("alice")), doc=doc)
    await again.synced.wait()
    await again.insert("!")
    await eventually(lambda: str(scene.victim.text).endswith("!"))
    assert not again.closed.is_set()
    await again.close()


async def test_sixteen_thousand_new_client_ids(scene: Scene) -> None:
    def fresh(client: int) -> bytes:
        item = bytes([0x04]) + lib0.uint(1) + lib0.string("text") + lib0.string("x")
        return lib0.sync(2, lib0.update((client, 0, [item])))

    before = scene.refusals_of("too_many_client_ids")
    frames = [fresh(10_000_000 + i) for i in range(16_000)]
    async with attack_window(scene, "16000_new_client_ids"):
        attacker = await open_attacker(scene.attacker_url())
        assert await close_code_after(attacker, *frames) == TOO_LARGE
    assert scene.refusals_of("too_many_client_ids") == before + 1
    assert len(await scene.logged_by("mallory")) == 4  # the first four ids were fine


async def test_awareness_spoofing_is_dropped_not_relayed(scene: Scene) -> None:
    mine = Awareness(scene.victim.doc)
    await scene.victim.set_awareness(mine, {"cursor": "victim"})
    await eventually(lambda: any(e[0] == mine.client_id for e in _entries(scene.victim.awareness)))
    seen = len(scene.victim.awareness)
    before = scene.refusals_of("awareness_not_owned")
    spoof = lib0.awareness((mine.client_id, 99, '{"cursor":"spoofed"}'))
    wipe = lib0.awareness((mine.client_id, 100, "null"))
    own = lib0.awareness((31337, 1, '{"cursor":"mallory"}'))
    async with attack_window(scene, "awareness_spoofing"):
        attacker = await open_attacker(scene.attacker_url())
        for frame in (spoof, wipe, own):
            await attacker.send(lib0.awareness_frame(frame))
        # Dropped, not closed: y-websocket itself relays removals of timed-out peers' ids.
        await eventually(lambda: any(e[0] == 31337 for e in _entries(scene.victim.awareness)))
        await attacker.close()
    assert scene.refusals_of("awareness_not_owned") == before + 2
    relayed = _entries(scene.victim.awareness[seen:])
    assert all(client != mine.client_id for client, _, _ in relayed)
    ours = [state for client, _, state in relayed if client == 31337 and state]
    assert ours and ours[0]["user"]["id"] == "mallory"  # stamped from the token
    records = await scene.gw.records(Topic.PRESENCE, scene.letter_a)
    assert not any(b"spoofed" in r.value for r in records)


async def test_read_only_bypass_via_sync_step2(scene: Scene) -> None:
    doc: Doc[Any] = Doc()
    doc.get("text", type=Text).insert(0, "viewer was here")
    before = scene.refusals_of("read_only")
    relayed = len(scene.victim.received)
    async with attack_window(scene, "read_only_step2"):
        viewer = await YClient.connect(scene.attacker_url("vera", "viewer"), doc=doc)
        await viewer.synced.wait()
        await viewer.ws.send(lib0.sync(1, doc.get_update()))
        await eventually(lambda: len(viewer.denied) >= 1)
    assert scene.refusals_of("read_only") >= before + 1
    assert await scene.logged_by("vera") == []
    await scene.barrier()
    assert not any(b"viewer was here" in m for m in scene.victim.received[relayed:])
    await viewer.close()


async def test_permessage_deflate_bomb(scene: Scene) -> None:
    """Deflate is off (gateway/api/server.py): a compressed frame is a protocol error (1002).
    Were it on, websockets applies max_size to the inflated size."""
    compressor = zlib.compressobj(wbits=-15)
    bomb = compressor.compress(b"\x00" * 20_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = bomb[:-4]  # RFC 7692: drop the 00 00 ff ff tail
    before = scene.refusals_of("transport_1002")
    async with attack_window(scene, "deflate_bomb"):
        reader, writer = await asyncio.open_connection("127.0.0.1", scene.gw.port)
        token = scene.gw.token(user="mallory")
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /v1/letter-{scene.letter_a}?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode()
        )
        response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101") and b"deflate" not in response.lower()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(bomb))
        header = bytes([0xC2, 0x80 | 126]) + struct.pack("!H", len(bomb)) + mask  # FIN RSV1 bin
        writer.write(header + masked)
        rest = await asyncio.wait_for(reader.read(), timeout=10)  # until the server hangs up
        writer.close()
    assert re.search(rb"\x88.\x03\xea", rest, re.S)  # a close frame with 1002 (protocol error)
    await eventually(lambda: scene.refusals_of("transport_1002") == before + 1)
    assert await scene.logged_by("mallory") == []


async def test_ownership_survives_a_gateway_restart(scene: Scene) -> None:
    """A fresh instance (empty memory, same log and Redis) still refuses the squatter."""
    victim = scene.victim.doc.client_id
    known = len(str(scene.victim.text))
    squat = lib0.update((victim, known, [lib0.string_item(victim, known - 1, "EVIL")]))
    redis = scene.gw.app.state.gateway.ctx.redis
    async with running_gateway(scene.gw.settings, log=scene.gw.log, redis=redis) as fresh:
        url = fresh.ws_url(scene.letter_a, fresh.token(user="mallory"))
        attacker = await open_attacker(url)
        assert await close_code_after(attacker, lib0.sync(2, squat)) == FORBIDDEN
        alice = await YClient.connect(
            fresh.ws_url(scene.letter_a, fresh.token(user="alice")), doc=scene.victim.doc
        )
        await alice.synced.wait()
        (sent,) = await alice.insert("!")  # the owner itself still writes under its id there
        await eventually(lambda: sent in alice.updates)  # echoed: appended to the log
        assert not alice.closed.is_set()
        await alice.close()
    assert await scene.logged_by("mallory") == []
