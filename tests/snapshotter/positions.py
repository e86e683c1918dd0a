"""The positions the snapshotter committed, as PostgreSQL holds them."""

import asyncpg


async def committed(dsn: str) -> int:
    """Records the snapshotter committed (0 while the database refuses us)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        total = await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM consumer_positions"
            " WHERE consumer_group = 'snapshotter'"
        )
        return int(total)
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()
