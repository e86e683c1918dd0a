"""A reset rebuild (`backfill snapshotter --from-beginning --reset`) deletes the snapshotter's
positions under a running service. The service's next commit must not create its stale
position again (the rebuild would then start that partition there, its earlier records never
rebuilt), must not deadlock with the reset, and commits nothing while the rebuild is marked."""

import asyncio

import asyncpg
import pytest

from schemas.rebuilds import MARKER_GROUP, SNAPSHOTTER_RESET
from snapshotter.consumer import GROUP
from snapshotter.fold import BatchOutput
from snapshotter.store import RebuildUnderWay, StalePositionError, Store
from tests.snapshotter.conftest import LETTERS
from tests.support import eventually
from tools.backfill_snapshotter import reset


async def position(pool: asyncpg.Pool, partition: int) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT next_offset FROM consumer_positions WHERE consumer_group = $1 AND topic = $2"
        " AND partition = $3",
        GROUP,
        LETTERS,
        partition,
    )
    return value


async def test_a_commit_whose_position_was_reset_is_stale(store: Store) -> None:
    await store.commit(GROUP, LETTERS, 2, None, 54, BatchOutput())  # the service at 54
    await store.pool.execute("DELETE FROM consumer_positions WHERE consumer_group = $1", GROUP)
    with pytest.raises(StalePositionError, match="no longer 54"):
        await store.commit(GROUP, LETTERS, 2, 54, 60, BatchOutput())  # its next batch
    assert await position(store.pool, 2) is None  # the rebuild starts the partition at 0

    await store.commit(GROUP, LETTERS, 2, None, 7, BatchOutput())  # the rebuild's first batch
    with pytest.raises(StalePositionError, match="stored meanwhile"):
        await store.commit(GROUP, LETTERS, 2, None, 9, BatchOutput())
    assert await position(store.pool, 2) == 7


async def test_the_services_store_commits_nothing_while_a_rebuild_is_marked(db: str) -> None:
    service = await Store.open(db, yield_to_rebuild=True)
    rebuild = await Store.open(db)
    try:
        await service.commit(GROUP, LETTERS, 0, None, 10, BatchOutput())
        await rebuild.pool.execute(
            "INSERT INTO consumer_positions VALUES ($1, $2, $3, 0)",
            MARKER_GROUP,
            *SNAPSHOTTER_RESET,
        )
        assert await service.rebuilding()
        # The rebuild passing through the service's own position is no licence to commit.
        with pytest.raises(RebuildUnderWay):
            await service.commit(GROUP, LETTERS, 0, 10, 12, BatchOutput())
        await rebuild.commit(GROUP, LETTERS, 0, 10, 12, BatchOutput())  # the rebuild's own
        assert await position(rebuild.pool, 0) == 12
        await rebuild.pool.execute(
            "DELETE FROM consumer_positions WHERE consumer_group = $1", MARKER_GROUP
        )
        await service.commit(GROUP, LETTERS, 0, 12, 13, BatchOutput())  # the rebuild ended
        assert await position(rebuild.pool, 0) == 13
    finally:
        await service.close()
        await rebuild.close()


async def test_a_reset_waits_for_a_commit_in_flight_instead_of_deadlocking(
    db: str, store: Store
) -> None:
    await store.commit(GROUP, LETTERS, 0, None, 5, BatchOutput())
    conn = await asyncpg.connect(db)
    try:
        # A service's commit: its position row first, then the tables.
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "UPDATE consumer_positions SET next_offset = 6 WHERE consumer_group = $1"
            " AND topic = $2 AND partition = 0",
            GROUP,
            LETTERS,
        )
        resetting = asyncio.create_task(reset(store.pool))

        async def blocked() -> bool:
            waiting = await store.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            return bool(waiting)

        await eventually(blocked)  # the reset waits for the commit
        await conn.execute(
            "INSERT INTO letters (letter_id, firm_id, title, created_by, created_at, log_topic,"
            " log_partition, log_offset) VALUES ('L', 'f', 't', 'u', now(), $1, 0, 5)",
            LETTERS,
        )
        await tx.commit()
        assert await asyncio.wait_for(resetting, 10)
        assert await position(store.pool, 0) is None  # the reset came after the commit
        assert await store.pool.fetchval("SELECT count(*) FROM letters") == 0
    finally:
        await conn.close()
