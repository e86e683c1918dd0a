"""Single hostile frames against a live gateway: refused with the documented close code,
counted, never logged or relayed, while another letter keeps being served (issue 9)."""

import asyncio
from typing import Any

import pytest
import websockets

from gateway.errors import MALFORMED, TOO_LARGE
from tests.attacks.harness import Scene, attack_window, close_code_after, open_attacker
from tests.preparse import lib0
from tests.preparse.hostile_updates import nested_any

FF = b"\xff" * 200_000

FRAMES = {
    # name: (frame, close code, refusal reason, a piece of it that must appear nowhere)
    "nested_any_30000": (
        lib0.sync(2, nested_any(30_000, 117)),
        MALFORMED,
        "depth_exceeded",
        b"\x75\x01" * 64,
    ),
    "huge_sv_count": (b"\x00\x00\x05" + lib0.uint(2**29), TOO_LARGE, "too_many_sv_entries", None),
    "huge_clients_count": (
        lib0.sync(2, lib0.uint(2**27) + b"\x00"),
        TOO_LARGE,
        "too_many_clients",
        None,
    ),
    "ff_in_awareness": (b"\x01" + FF, MALFORMED, "varint_too_long", FF[:64]),
    "ff_in_sync": (b"\x00\x02" + FF, MALFORMED, "varint_too_long", FF[:64]),
    "awareness_clock_2_64": (
        lib0.awareness_frame(lib0.awareness((4242, 2**64, '{"cursor":1}'))),
        MALFORMED,
        "awareness_clock_too_large",
        None,
    ),
    "awareness_20000_ids": (
        lib0.awareness_frame(lib0.awareness(*[(i + 1, 1, "{}") for i in range(20_000)])),
        TOO_LARGE,
        "too_many_awareness_entries",
        None,
    ),
    "frame_over_1_mib": (
        b"\x00\x02" + lib0.buf(b"\x00" * 1_500_000),
        TOO_LARGE,
        "message_too_large",
        None,
    ),
}


@pytest.mark.parametrize("name", FRAMES)
async def test_hostile_frame(scene: Scene, name: str) -> None:
    frame, code, reason, marker = FRAMES[name]
    before = scene.refusals_of(reason)
    relayed = len(scene.victim.received)
    async with attack_window(scene, name):
        attacker = await open_attacker(scene.attacker_url())
        assert await close_code_after(attacker, frame) == code
    await _refused_and_kept_away(scene, reason, before, relayed, marker)


async def _refused_and_kept_away(
    scene: Scene, reason: str, before: float, relayed: int, marker: bytes | None
) -> None:
    """Counted once, nothing logged for the attacker, nothing of it relayed to the victim (who
    stays connected)."""
    assert scene.refusals_of(reason) == before + 1
    assert await scene.logged_by("mallory") == []
    await scene.barrier()
    later = scene.victim.received[relayed:]
    assert scene.foreign_updates(later) == []
    if marker is not None:
        assert not any(marker in m for m in later)
    assert not scene.victim.closed.is_set()


async def test_ten_megabyte_frame_is_closed_by_the_websocket_layer(scene: Scene) -> None:
    before = scene.refusals_of("transport_1009")
    async with attack_window(scene, "frame_10_mb"):
        attacker = await open_attacker(scene.attacker_url())
        # websockets (uvicorn's ws_max_size = 2 x max_message_bytes) refuses it unread: 1009.
        assert await close_code_after(attacker, b"\x00\x02" + b"\x00" * 10_000_000) == 1009
    assert scene.refusals_of("transport_1009") == before + 1
    assert await scene.logged_by("mallory") == []


async def open_hocuspocus_attacker(scene: Scene) -> tuple[Any, bytes]:
    """A raw socket on `/v1/hocuspocus` with letter A authenticated as mallory and synced
    (its step 1 answered); and the address every message to it starts with."""
    address = lib0.buf(f"letter-{scene.letter_a}".encode())
    ws = await websockets.connect(f"ws://127.0.0.1:{scene.gw.port}/v1/hocuspocus", max_size=None)
    token = scene.gw.token(user="mallory").encode()
    await ws.send(address + b"\x02\x00" + lib0.buf(token))
    await ws.send(address + b"\x00\x00\x01\x00")  # sync step 1, an empty state vector
    async with asyncio.timeout(10):
        assert (await ws.recv(decode=False)).startswith(address + b"\x02\x02")  # authenticated
        while not (await ws.recv(decode=False)).startswith(address + b"\x00\x01"):  # the step 2
            pass
    return ws, address


@pytest.mark.parametrize("name", FRAMES)
async def test_hostile_frame_in_the_hocuspocus_framing(scene: Scene, name: str) -> None:
    """The same frames behind a document's address: the same pre-parser, refusal and code."""
    frame, code, reason, marker = FRAMES[name]
    before = scene.refusals_of(reason)
    relayed = len(scene.victim.received)
    attacker, address = await open_hocuspocus_attacker(scene)
    assert await close_code_after(attacker, address + frame) == code
    await _refused_and_kept_away(scene, reason, before, relayed, marker)
