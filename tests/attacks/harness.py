"""A live gateway with two letters under attack: probes, an attacker socket, and the checks.

Letter A is attacked (a victim is connected to it); letter B is a bystander that types
throughout: another letter must keep working while A is under attack (issue 9). The tests check
that it does (its connection stays open, every echo comes back once, in order, and is logged
once) without timing it: bench/attack_bystander.py measures its latency during the same attacks
(docs/performance.md, "Bystander latency under attack").
"""

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import websockets
from pycrdt import Doc, Text, create_sync_message, create_update_message
from websockets.protocol import State

from gateway.preparse import STATE_LIMITS, check_update, parse_frame
from schemas.events import Topic
from schemas.settings import Settings
from tests.gateway.harness import Running, YClient, running_gateway

# A hang detector, not a speed target: an echo takes milliseconds, but the quadratic-varint
# attack of issue 9 blocked the event loop for over 10 s, which this catches on any machine.
STALL_S = 5.0
SETTLE = 5  # echoes before an attack window opens
AFTER = 20  # echoes after it closes: the gateway goes on serving the bystander

Trip = tuple[float, float]  # (sent, echoed) of one probe update, perf_counter seconds


class Probe:
    """Types one character at a time into letter B and waits for each echo (the append's ack),
    checking that it is exactly the update sent: none lost, duplicated or out of order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.trips: list[Trip] = []
        self.client_id = 0
        self._stop = asyncio.Event()
        self._ended = False
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ws = await websockets.connect(self.url, max_size=None)
        doc: Doc[Any] = Doc()
        self.client_id = doc.client_id
        await ws.send(create_sync_message(doc))
        while (await ws.recv())[:2] != b"\x00\x01":  # the server's step 2: loaded
            pass
        self._task = asyncio.create_task(self._run(ws, doc))

    async def _run(self, ws: Any, doc: Doc[Any]) -> None:
        text = doc.get("text", type=Text)
        try:
            while not self._stop.is_set():
                before = doc.get_state()
                text += "."
                update = doc.get_update(before)
                started = time.perf_counter()
                await ws.send(create_update_message(update))
                try:
                    async with asyncio.timeout(STALL_S):
                        await self._echo_of(ws, update)
                except TimeoutError:
                    raise AssertionError(
                        f"echo {len(self.trips)} not back in {STALL_S} s"
                    ) from None
                except websockets.ConnectionClosed:
                    raise AssertionError(
                        f"the gateway closed the bystander: {ws.close_code}"
                    ) from None
                async with self._progress:
                    self.trips.append((started, time.perf_counter()))
                    self._progress.notify_all()
            assert ws.state is State.OPEN, f"the gateway closed the bystander: {ws.close_code}"
        finally:
            await ws.close()
            async with self._progress:
                self._ended = True
                self._progress.notify_all()

    async def _echo_of(self, ws: Any, update: bytes) -> None:
        """Read until the echo of `update`; any other update of ours in between is a duplicate
        or out of order (others' updates, none on B, would be let through)."""
        sent = check_update(update, STATE_LIMITS).blocks
        while True:
            frame = await ws.recv()
            if frame[:2] != b"\x00\x02":
                continue
            blocks = check_update(parse_frame(frame, STATE_LIMITS).body, STATE_LIMITS).blocks
            ours = tuple(b for b in blocks if b[0] == self.client_id)
            if ours:
                assert ours == sent, f"echo {ours} while waiting for {sent}"
                return

    async def wait_samples(self, n: int) -> None:
        assert self._task is not None
        target = len(self.trips) + n
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.trips) >= target or self._ended)
        if len(self.trips) < target:
            await self._task  # raises what ended it
            raise AssertionError("the probe stopped")

    async def stop(self) -> list[Trip]:
        """Stop after the echo in flight; raises whatever went wrong with the bystander."""
        self._stop.set()
        assert self._task is not None
        await self._task
        return self.trips


def p99(samples: list[float]) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[98]
        if len(samples) > 1
        else samples[0]
    )


@dataclass
class Window:
    """One attack as the bystander saw it: its round trips, and when the attack ran."""

    name: str
    trips: list[Trip]
    opened: float
    closed: float

    @property
    def during(self) -> list[Trip]:
        """The round trips in flight at some moment of the attack."""
        return [(s, e) for s, e in self.trips if s <= self.closed and e >= self.opened]

    @property
    def inside(self) -> int:
        """Round trips both sent and echoed while the attack ran."""
        return sum(self.opened <= s and e <= self.closed for s, e in self.trips)

    def figures(self) -> dict[str, float]:
        latencies = [e - s for s, e in self.trips]
        return {
            "n": len(latencies),
            "during": len(self.during),
            "inside": self.inside,
            "attack_ms": round((self.closed - self.opened) * 1000, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(p99(latencies) * 1000, 2),
            "max_ms": round(max(latencies) * 1000, 2),
        }


WINDOWS: list[Window] = []  # every attack window of this process, in order (for the bench)
FIGURES: dict[str, dict[str, float]] = {}  # attack -> bystander figures (printed, not asserted)


@dataclass
class Scene:
    gw: Running
    letter_a: str
    letter_b: str
    victim: YClient
    refusals: dict[str, float] = field(default_factory=dict)

    def refusals_of(self, reason: str) -> float:
        registry = self.gw.app.state.gateway.ctx.metrics.registry
        value = registry.get_sample_value("gateway_refusals_total", {"reason": reason})
        return float(value or 0.0)

    def attacker_url(self, user: str = "mallory", role: str = "editor") -> str:
        return self.gw.ws_url(self.letter_a, self.gw.token(user=user, role=role))

    async def logged_by(self, user: str) -> list[bytes]:
        """Values of letter A's doc/awareness records written by `user`."""
        found = []
        for topic in (Topic.LETTERS, Topic.PRESENCE):
            for record in await self.gw.records(topic, self.letter_a):
                headers = dict(record.headers)
                if headers["user"] == user.encode() and headers["type"] != b"session.joined":
                    if headers["type"] != b"session.left":
                        found.append(record.value)
        return found

    async def logged_of(self, client: int) -> list[tuple[int, int, int]]:
        """The blocks of `client` in letter B's doc.update records, in log order."""
        records = await self.gw.records(Topic.LETTERS, self.letter_b)
        updates = [r.value for r in records if dict(r.headers)["type"] == b"doc.update"]
        blocks = (check_update(u, STATE_LIMITS).blocks for u in updates)
        return [b for found in blocks for b in found if b[0] == client]

    async def barrier(self) -> None:
        """Everything the gateway relayed to the victim before now has arrived."""
        (sent,) = await self.victim.insert("v")
        ((client, _, end),) = check_update(sent, STATE_LIMITS).blocks
        deadline = time.monotonic() + 10
        # The echo follows whatever was queued before it (it may come merged with those).
        while not any(_reaches(u, client, end) for u in self.victim.updates[-3:]):
            assert time.monotonic() < deadline, "victim got no echo"
            await asyncio.sleep(0.005)

    def foreign_updates(self, frames: list[bytes]) -> list[bytes]:
        """The update frames among `frames` with structs of anyone but the victim."""
        own = self.victim.doc.client_id
        found = []
        for frame in frames:
            if frame[:2] in (b"\x00\x01", b"\x00\x02"):
                body = parse_frame(frame, STATE_LIMITS).body
                if any(c != own for c, _, _ in check_update(body, STATE_LIMITS).blocks):
                    found.append(frame)
        return found


@asynccontextmanager
async def open_scene(data_dir: Path, redis_url: str) -> AsyncIterator[Scene]:
    """A gateway on the embedded log and `redis_url`, with letters A (attacked, the victim
    connected) and B (a second client connected: the bystander's letter is a shared one)."""
    redis = aioredis.Redis.from_url(redis_url)
    # The frame fuzz probes with a sync step 1 after every frame, and reconnects as few users
    # after every close: neither is rate-limited here.
    settings = Settings(
        data_dir=data_dir,
        partitions=2,
        state_requests_burst=1_000_000,
        handshakes_burst=1_000_000,
    )
    try:
        async with running_gateway(settings, redis=redis) as gw:
            letter_a, letter_b = await gw.create_letter(), await gw.create_letter()
            victim = await gw.client(letter_a, user="alice")
            await victim.synced.wait()
            await victim.insert("hello")
            bystander = await gw.client(letter_b, user="carol")
            await bystander.synced.wait()
            scene = Scene(gw, letter_a, letter_b, victim)
            await scene.barrier()  # the victim's own echoes are in
            yield scene
            await victim.close()
            await bystander.close()
    finally:
        await redis.aclose()


def _reaches(update: bytes, client: int, end: int) -> bool:
    return any(c == client and e >= end for c, _, e in check_update(update, STATE_LIMITS).blocks)


@asynccontextmanager
async def attack_window(scene: Scene, name: str) -> AsyncIterator[Probe]:
    """Letter B types before, during and after the block (the attack); then checks that it was
    served throughout: never closed, every echo back once and in order (the probe checks each),
    none stalled, each update logged once."""
    probe = Probe(scene.gw.ws_url(scene.letter_b, scene.gw.token(user="prober")))
    await probe.start()
    try:
        await probe.wait_samples(SETTLE)
        opened = time.perf_counter()
        yield probe
        closed = time.perf_counter()
        await probe.wait_samples(AFTER)
    finally:
        trips = await probe.stop()  # also when the attack's own checks failed
    window = Window(name, trips, opened, closed)
    WINDOWS.append(window)
    FIGURES[name] = window.figures()
    # No count of round trips inside the attack: that would be a speed target (a one-frame
    # attack lasts about one round trip). The probe types without a pause, so one was in flight
    # across it, and came back: `wait_samples` above raised otherwise.
    expected = [(probe.client_id, i, i + 1) for i in range(len(window.trips))]
    assert await scene.logged_of(probe.client_id) == expected, "not each update logged once"


async def open_attacker(url: str, **kw: Any) -> Any:
    """A raw socket on letter A, after the room has loaded (the server's step 1 arrived)."""
    ws = await websockets.connect(url, max_size=None, **kw)
    first = await ws.recv()
    assert first[:2] == b"\x00\x00"
    return ws


async def close_code_after(ws: Any, *frames: bytes) -> int | None:
    """Send `frames` (stopping if the server closes) and return the close code received."""
    try:
        for frame in frames:
            await ws.send(frame)
            await asyncio.sleep(0)  # the attacker shares our event loop: let the probe run
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    return ws.close_code
