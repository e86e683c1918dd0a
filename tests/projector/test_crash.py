"""kill -9 during bursts: after restarts the Redis state equals a fresh replay of the log."""

import asyncio
import functools
import os
import random
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

from eventlog import Log
from schemas import Event
from schemas.settings import Settings
from tests.projector.support import (
    Editor,
    append,
    awareness,
    caught_up,
    comment,
    created,
    dump,
    joined,
    left,
    projector,
    redis_bytes,
    reply,
)
from tests.support import eventually, spawn_listening

ROOT = Path(__file__).resolve().parents[2]


async def _start(settings: Settings, metrics_port: int) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env.update(
        STENO_DATA_DIR=str(settings.data_dir),
        STENO_REDIS_URL=str(settings.redis_url),
        STENO_PARTITIONS=str(settings.partitions),
        STENO_PROJECTOR_METRICS_PORT=str(metrics_port),
        STENO_PROJECTOR_CHECK_INTERVAL_S="0.1",
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "projector", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def _burst(editors: list[Editor], rng: random.Random, n: int) -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        ed = rng.choice(editors)
        roll = rng.random()
        if roll < 0.7:
            index = rng.randrange(len(ed.root.children))
            events.append(ed.event(ed.type(index, rng.choice("abc "))))
        elif roll < 0.8:
            events.append(ed.event(ed.paragraph(f"p{i}")))
        elif roll < 0.85:
            events.append(comment(ed.letter_id, f"t{i}", f"c{i}", user=ed.user))
            events.append(reply(ed.letter_id, f"t{i}", f"r{i}", "re"))
        elif roll < 0.9:
            conn = f"{ed.letter_id}-{ed.user}-{i}"
            events += [joined(ed.letter_id, conn, ed.user), left(ed.letter_id, conn, ed.user)]
        else:
            state = {"user": {"id": ed.user}, "cursor": {"anchor": i}}
            events.append(awareness(ed.letter_id, 100 + i % 7, i, state, f"aw-{ed.user}", ed.user))
    return events


async def _progress(client: aioredis.Redis) -> int:
    total = 0
    async for key in client.scan_iter("projector:pos:*"):
        total += int(redis_bytes(await client.get(key)))
    return total


async def test_state_equals_a_replay_after_kill_9(
    log: Log, settings: Settings, client: aioredis.Redis, other_db: Callable[[], str]
) -> None:
    rng = random.Random(20261127)
    editors = [Editor(f"K{i}", user=f"u{i % 3}") for i in range(10)]
    setup = [e for ed in editors for e in (created(ed.letter_id), ed.event(ed.paragraph("x")))]
    await append(log, settings, setup)
    await client.set("gateway:gw-1:alive", "1")  # the connections' gateway is alive
    # Restarted on this same port after each kill below.
    proc, port = await spawn_listening(lambda port: _start(settings, port))
    try:
        for _ in range(3):
            burst = asyncio.create_task(append(log, settings, _burst(editors, rng, 300)))
            target = await _progress(client) + rng.randint(30, 200)
            await eventually(functools.partial(_further, client, target, burst), 30)
            proc.kill()  # SIGKILL: no cleanup, possibly in the middle of a batch
            await proc.wait()
            await burst
            proc = await _start(settings, port)
        await caught_up(log, settings, client, timeout=60)
        metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert 'projector_events_folded_total{type="doc.update"}' in metrics
    finally:
        proc.terminate()
        assert await proc.wait() == 0
    replay = settings.model_copy(update={"redis_url": other_db()})
    fresh = aioredis.Redis.from_url(other_db())
    try:
        async with projector(replay, log):
            await caught_up(log, replay, fresh, timeout=60)
        mine, replayed = await dump(client), await dump(fresh)
        assert len([k for k in mine if k.startswith("ydoc:") and ":" not in k[5:]]) == 10
        if mine != replayed:
            for k in sorted(set(mine) | set(replayed)):
                if mine.get(k) != replayed.get(k):
                    print("DIFF", k, "\n  live  ", mine.get(k), "\n  replay", replayed.get(k))
        assert mine == replayed
    finally:
        await fresh.aclose()


async def _further(client: aioredis.Redis, target: int, burst: asyncio.Task[None]) -> bool:
    return burst.done() or await _progress(client) >= target


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
