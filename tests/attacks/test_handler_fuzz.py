"""Bounded mutation fuzz of the gateway's frame handler over real WebSockets (issue 9).

Attackers on letter A send valid y-protocol frames built from a replica of the letter (edits of
text, maps, arrays and XML, sync steps 1/2, awareness, query-awareness, auth, app type 100),
most of them mutated (tests/attacks/mutations.py); a seeded RNG makes the inputs repeatable
(up to timing: the replica absorbs echoes whenever they arrive).
After every frame the attacker sends a SyncStep1 and waits for its answer: the frame was handled
within `PER_FRAME_S`, or the connection was closed. Checked: every close is one of our protocol
refusals and is counted under its reason in the metrics (no `frame_error`, the guard's net for
crashes); read-only refusals match the permission-denied messages; nothing but accepted updates
reaches the log; memory stays bounded; a client typing into letter B keeps its echo and its text;
the victim on A converges with the letter.
"""

import asyncio
import gc
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from pycrdt import Doc, Text, create_sync_message, create_update_message

from gateway.preparse import STATE_LIMITS, ProtocolError, check_update, parse_frame
from gateway.wire.update import scan_update
from schemas.events import Topic
from tests.attacks.harness import Scene, p99
from tests.attacks.mutations import Replica, mutate

SEED = 9
# ~2,050 connections, each closed with a protocol refusal, ~470 distinct updates accepted and 26
# refusal reasons reached (6,000 frames, twice the time, add only too_many_awareness_entries, 3
# times: tests/attacks/test_frames.py and tests/preparse/test_attacks.py cover it). A leak of
# ~40 KB a frame still exceeds the RSS bound.
FRAMES = 3000
KEEP = 0.25  # share of frames sent unmutated: the accepted paths get exercised too
PER_FRAME_S = 5.0  # a hang detector, not a speed target: a frame is handled in ~1 ms
PROBE = b"\x00\x00\x01\x00"  # SyncStep1 with an empty state vector: answered with a step 2
PROTOCOL_CLOSES = {4400, 4403, 4413, 4429}
NOT_CLOSING = {
    "awareness_not_owned",
    "awareness_rate_limited",
    "clock_gap",
    "read_only",
    "update_before_sync",
}
RSS_GROWTH_MAX = 96 * 2**20


@dataclass
class Attacker:
    ws: Any
    replica: Replica
    denied: int = 0  # permission-denied messages received (read-only refusals)

    @classmethod
    async def open(cls, url: str, rng: random.Random) -> "Attacker":
        attacker = cls(await websockets.connect(url, max_size=None), Replica(rng))
        assert await attacker.roundtrip(None), "the gateway refused a fresh connection"
        return attacker

    async def roundtrip(self, frame: bytes | str | None) -> bool:
        """Send `frame` and the probe; False when the gateway closed the connection instead."""
        # A frame that is a SyncStep1 is answered too, before the probe's answer.
        expected = 2 if isinstance(frame, bytes) and frame[:2] == b"\x00\x00" else 1
        try:
            if frame is not None:
                await self.ws.send(frame)
            await self.ws.send(PROBE)
            async with asyncio.timeout(PER_FRAME_S):
                while expected:
                    message = await self.ws.recv()
                    expected -= message[:2] == b"\x00\x01"
                    self.denied += message[:1] == b"\x02"
                    if message[:2] == b"\x00\x00":  # our greeting: answered, as clients do
                        await self.ws.send(self.replica.step2(message))
                    self.replica.absorb(message)
        except TimeoutError:
            pytest.fail(f"frame not handled within {PER_FRAME_S} s: {frame!r:.200}")
        except websockets.ConnectionClosed:
            await self.ws.wait_closed()
            return False
        return True


class Typer:
    """A client typing into letter B, one character per call, timing each echo."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.latencies: list[float] = []

    @classmethod
    async def start(cls, url: str) -> "Typer":
        typer = cls(await websockets.connect(url, max_size=None))
        await typer.ws.send(create_sync_message(typer.doc))
        while (await typer.ws.recv())[:2] != b"\x00\x01":
            pass
        return typer

    async def type_one(self) -> None:
        text, before = self.doc.get("text", type=Text), self.doc.get_state()
        text += "x"
        started = time.perf_counter()
        await self.ws.send(create_update_message(self.doc.get_update(before)))
        async with asyncio.timeout(PER_FRAME_S):
            while (await self.ws.recv())[:2] != b"\x00\x02":
                pass
        self.latencies.append(time.perf_counter() - started)


@dataclass
class Tally:
    frames: int = 0
    connections: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    denied: int = 0
    accepted_updates: set[bytes] = field(default_factory=set)
    slowest: float = 0.0


def refusals(scene: Scene) -> Counter[str]:
    registry = scene.gw.app.state.gateway.ctx.metrics.registry
    found: Counter[str] = Counter()
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "gateway_refusals_total":
                found[sample.labels["reason"]] = int(sample.value)
    return found


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def update_body(frame: bytes) -> bytes | None:
    try:
        parsed = parse_frame(frame, STATE_LIMITS)
    except ProtocolError:
        return None
    return parsed.body if parsed.kind in ("sync_step2", "sync_update") else None


def attacker_url(scene: Scene, n: int) -> str:
    viewer = n % 6 == 5  # its updates must be refused as read-only, never applied
    user, role = ("mallory-ro", "viewer") if viewer else ("mallory", "editor")
    params = {"events": "1"} if n % 3 == 0 else {}  # app frames reach the app channel
    return scene.gw.ws_url(scene.letter_a, scene.gw.token(user=user, role=role), **params)


async def fuzz(scene: Scene, rng: random.Random, typer: Typer) -> tuple[Tally, int]:
    """Send FRAMES frames; the tally and the RSS growth after a warm-up of a tenth of them."""
    tally, attacker, recent, rss_warm, viewer = Tally(), None, [PROBE], 0, False
    for i in range(FRAMES):
        if attacker is None:
            viewer = tally.connections % 6 == 5
            attacker = await Attacker.open(attacker_url(scene, tally.connections), rng)
            tally.connections += 1
        valid = attacker.replica.frame()
        recent = [*recent[-31:], valid]
        mutated = valid if rng.random() < KEEP else mutate(rng, valid, recent)
        frame: bytes | str = mutated.hex() if rng.random() < 0.005 else mutated  # text frame
        started = time.perf_counter()
        still_open = await attacker.roundtrip(frame)
        tally.slowest = max(tally.slowest, time.perf_counter() - started)
        tally.frames += 1
        if still_open and isinstance(frame, bytes) and not viewer:
            body = update_body(frame)
            if body is not None:
                tally.accepted_updates.add(body)
        if not still_open:
            tally.closes[attacker.ws.close_code] += 1
            tally.reasons[attacker.ws.close_reason] += 1
            tally.denied, attacker = tally.denied + attacker.denied, None
        if i % 25 == 0:
            await typer.type_one()  # letter B keeps working throughout
        if i == FRAMES // 10:
            rss_warm = rss()
    if attacker is not None:
        tally.denied += attacker.denied
        await attacker.ws.close()
    return tally, rss() - rss_warm


async def test_frame_handler_fuzz(scene: Scene) -> None:
    before = refusals(scene)
    typer = await Typer.start(scene.gw.ws_url(scene.letter_b, scene.gw.token(user="bob")))
    started = time.perf_counter()
    tally, growth = await fuzz(scene, random.Random(SEED), typer)
    elapsed = time.perf_counter() - started
    await typer.ws.close()
    delta = refusals(scene) - before
    print(
        f"handler fuzz: {tally.frames} frames, {tally.connections} connections in {elapsed:.1f} s;"
        f" closes {dict(tally.closes)}; {len(tally.accepted_updates)} updates accepted;"
        f" slowest frame {tally.slowest * 1000:.0f} ms; RSS +{growth / 2**20:.1f} MiB;"
        f" letter B echo p99 {p99(typer.latencies) * 1000:.1f} ms; refusals {dict(delta)}"
    )
    assert set(tally.closes) <= PROTOCOL_CLOSES, tally.closes
    assert delta["frame_error"] == 0  # the guard's net for exceptions, panics included
    closing = {reason: n for reason, n in delta.items() if reason not in NOT_CLOSING}
    assert closing == dict(tally.reasons)  # every close counted under its reason
    assert delta["read_only"] == tally.denied
    assert sum(tally.closes.values()) > FRAMES // 3 and len(tally.accepted_updates) > FRAMES // 30
    assert growth < RSS_GROWTH_MAX, f"RSS grew by {growth / 2**20:.1f} MiB"
    await _nothing_refused_in_the_log(scene, tally)
    await _letters_converge(scene, typer)


async def _nothing_refused_in_the_log(scene: Scene, tally: Tally) -> None:
    updates: dict[str, list[bytes]] = {"mallory": [], "mallory-ro": []}
    for record in await scene.gw.records(Topic.LETTERS, scene.letter_a):
        headers = dict(record.headers)
        user = headers["user"].decode()
        if headers["type"] == b"doc.update" and user in updates:
            updates[user].append(record.value)
    assert updates["mallory-ro"] == []
    assert updates["mallory"]
    carried: dict[int, list[tuple[int, int]]] | None = None
    for value in updates["mallory"]:
        if value in tally.accepted_updates:
            continue
        # Most records differ from their frame (the deletions the letter had made are left
        # out): the accepted frames' clocks are read once, not once a record.
        carried = carried if carried is not None else _carried(tally.accepted_updates)
        assert _within(value, carried)


def _carried(accepted: set[bytes]) -> dict[int, list[tuple[int, int]]]:
    carried: dict[int, list[tuple[int, int]]] = {}
    for update in accepted:
        for client, first, end, *_ in scan_update(update, STATE_LIMITS).blocks:
            carried.setdefault(client, []).append((first, end))
    return carried


def _within(value: bytes, carried: dict[int, list[tuple[int, int]]]) -> bool:
    """Every struct of `value` is one an accepted frame carried (`carried`: their clocks per
    client): the gateway logs a repeat cut to what the letter lacked, a step 2 without the
    deletions the letter had made, and a refused resync's own part, computed from the frame.
    Only the clocks are compared (`scan_update`): an accepted update is valid against the
    letter, and alone its references may not resolve (`check_update` then refused one as a
    cycle)."""
    return all(
        any(a <= first and end <= b for a, b in carried.get(client, []))
        for client, first, end, *_ in scan_update(value, STATE_LIMITS).blocks
    )


async def _letters_converge(scene: Scene, typer: Typer) -> None:
    reader = await scene.gw.client(scene.letter_b, user="dave")
    await reader.synced.wait()
    assert str(reader.text) == "x" * len(typer.latencies)
    await reader.close()
    await scene.barrier()  # the victim on A has everything relayed so far
    fresh = await scene.gw.client(scene.letter_a, user="erin")
    await fresh.synced.wait()
    missing = fresh.doc.get_update(scene.victim.doc.get_state())
    assert not check_update(missing, STATE_LIMITS).blocks
    assert str(fresh.text) == str(scene.victim.text)
    await fresh.close()
