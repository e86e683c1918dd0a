"""Every row of the snapshotter's tables, in a stable order: what two runs' outcomes compare."""

from typing import Any

import asyncpg

TABLES = {
    "letters": "letter_id",
    "letter_version": "letter_id, version_number",
    "collaboration": "id",
    "comment_threads": "thread_id",
    "comments": "comment_id",
    "consumer_positions": "partition",
    "snapshotter_letter_state": "letter_id",
}


async def dump(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")]
            for table, key in TABLES.items()
        }
    finally:
        await conn.close()
