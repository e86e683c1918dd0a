"""Locks rebuilt from the log (`backfill locks`): the run, the letter's lock events, locks
granted briefly and lapsed, and the list the REST API gives."""

import json
import re
from typing import Any

from eventlog import Record
from gateway.collab.locks import Locks
from schemas.events import Topic
from tests.collab.conftest import Collab
from tests.support import eventually
from tools.backfill import backfill
from tools.progress import Meter
from tools.sources import Sources


async def rebuild(collab: Collab) -> str:
    """`steno-collab backfill locks`, on the test's log and Redis: its summary line."""
    src = Sources(collab.gw.settings, collab.gw.log, collab.redis)
    summary = await backfill(src, "locks", meter=Meter(every_s=3600))
    [line] = summary.lines
    return re.sub(r" in [0-9.]+ s", "", line)


async def lock_events(collab: Collab, lid: str) -> list[tuple[str, str, str]]:
    """(type, section, holder) of the letter's lock events, in log order."""
    found = []
    for record in await collab.gw.records(Topic.LETTERS, lid):
        kind = dict(record.headers)["type"].decode()
        if kind.startswith("lock."):
            payload = json.loads(record.value)
            found.append((kind, payload["section"], payload["holder"]["id"]))
    return found


async def acquired(collab: Collab, lid: str, section: str) -> Record:
    """The section's last `lock.acquired` record."""
    records = await collab.gw.records(Topic.LETTERS, lid)
    return [
        r
        for r in records
        if dict(r.headers)["type"] == b"lock.acquired" and json.loads(r.value)["section"] == section
    ][-1]


async def lock_briefly(collab: Collab, lid: str, user: str, *sections: str, ttl_s: int = 1) -> None:
    """`user` takes the letter's `sections`, granted to live `ttl_s` (the gateway's own TTL for
    every other grant)."""
    locks: Locks = collab.gw.app.state.locks
    default, locks.ttl_s = locks.ttl_s, ttl_s
    try:
        for section in sections:
            path = f"/v1/letters/{lid}/locks/{section}"
            assert (await collab.call("POST", path, user=user)).is_success
    finally:
        locks.ttl_s = default


async def lapsed_by_the_log(collab: Collab, lid: str, section: str, ttl_s: int = 1) -> None:
    """Wait until the section's key is gone (Redis' TTL) and Redis' clock is past its logged
    deadline (the record's time + `ttl_s`, which the restore reads): the record is stamped a few
    ms after the key was set, more when the machine is loaded, so the key can lapse first and a
    restore run in between finds the lock still live and restores it."""
    record = await acquired(collab, lid, section)

    async def lapsed() -> bool:
        if await collab.redis.exists(f"lock:{lid}:{section}"):
            return False
        return await now_ms(collab) > record.timestamp + ttl_s * 1000

    await eventually(lapsed)


async def now_ms(collab: Collab) -> int:
    """Redis' clock (TIME), which times the locks."""
    seconds, micros = await collab.redis.time()
    return int(seconds * 1000 + micros // 1000)


async def listed(collab: Collab, lid: str) -> list[dict[str, Any]]:
    r = await collab.call("GET", f"/v1/letters/{lid}/locks", user="bob")
    assert r.status_code == 200, r.text
    locks: list[dict[str, Any]] = r.json()["locks"]
    return locks
