"""Redis wiped under a running gateway (FLUSHALL, an older snapshot): keyed creates, `backfill
locks`, the 503 that waits for it, the restore watcher's wakes."""

from contextlib import AsyncExitStack

import httpx

from gateway import restored
from tests.collab.conftest import Collab
from tests.support import eventually
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources

BODY = {"firm_id": "firm-a", "title": "Demand"}


async def create(collab: Collab, key: str | None = None) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await collab.call("POST", "/v1/letters", json=BODY, headers=headers)


async def rebuild(collab: Collab, letters: list[str] | None = None) -> str:
    """`steno-collab backfill locks [--letters ...]`: its summary line, timing cut."""
    src = Sources(collab.gw.settings, collab.gw.log, collab.redis)
    [line] = (await backfill(src, "locks", letters=letters or (), meter=Meter(every_s=3600))).lines
    return line.split(" in ")[0]


def unrestored(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert "steno-collab backfill locks" in r.json()["detail"]
    assert r.headers["Retry-After"] == str(restored.RETRY_S)


class Wakes:
    """A gateway's `Context.wake_restore` (the app shell's watcher): the times it was called."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


STALE = "x" * 40  # the run_id of another Redis process: a restart from an older snapshot


async def notified_then_wiped(collab: Collab, folding: AsyncExitStack) -> None:
    """Bob notified of a mention (the projector folded it), then the projector stopped and
    Redis wiped."""
    lid = await collab.gw.create_letter("Dear Sir")
    thread = {"body": "@bob see", "anchor": {"from": 0, "to": 4}, "mentions": ["bob"]}
    r = await collab.call("POST", f"/v1/letters/{lid}/comments", user="alice", json=thread)
    assert r.status_code in (200, 201), r.text

    async def notified() -> bool:
        r = await collab.call("GET", "/v1/notifications", user="bob")
        return r.status_code == 200 and r.json()["unread"] == 1

    await eventually(notified)
    await folding.aclose()  # the projector stops
    await collab.redis.flushdb()
