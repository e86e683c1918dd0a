"""Letters' saved working states: a snapshotter fed batch by batch, the state rows it saved,
the positions it committed and the letters it has not saved yet."""

import json
from typing import Any

import asyncpg

from eventlog.embedded import EmbeddedLog
from snapshotter.consumer import Snapshotter
from snapshotter.store import Store
from tests.snapshotter.conftest import LETTERS

# Saves only when a letter is created (and at an orderly stop), unless a test says otherwise.
RARELY = {
    "snapshotter_state_records": 10_000,
    "autosave_updates": 10_000,
    "snapshotter_state_s": 3600.0,
}


async def feed(snapshotter: Snapshotter, log: EmbeddedLog, limit: int) -> None:
    """Fold what the log holds in batches of `limit` records through the real commit path,
    without forgetting the cached letters (a running snapshotter, not a restarted one)."""
    if not snapshotter.positions:
        await snapshotter.resume()
    for partition in list(snapshotter.positions):
        while batch := await log.read(
            snapshotter.topic, partition, snapshotter.positions[partition], limit
        ):
            await snapshotter.handle(batch)
            await snapshotter.flush()


async def state_rows(dsn: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """letter id -> (xmin of its row, its saved state)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT letter_id, xmin::text::bigint AS xmin, state::text AS state"
            " FROM snapshotter_letter_state"
        )
    finally:
        await conn.close()
    return {r["letter_id"]: (r["xmin"], json.loads(r["state"])) for r in rows}


async def committed(store: Store) -> dict[int, int]:
    return await store.positions("snapshotter", LETTERS)


async def lagging(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT letter_id, since FROM snapshotter_unsaved")
    finally:
        await conn.close()
    return {r["letter_id"]: r["since"] for r in rows}
