"""Comment and lock events from the gateway reach PostgreSQL through the snapshotter: the
comment tables (a deleted comment kept as a tombstone) and one audit row per event."""

import asyncpg

from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.store import Store
from tests.collab.conftest import Collab
from tests.snapshotter.scripts import drain


async def test_comments_and_locks_are_audited(collab: Collab, pg_database: str) -> None:
    lid = await collab.gw.create_letter("Pay 5000 EUR.")
    path = f"/v1/letters/{lid}/comments"
    r = await collab.call("POST", path, json={"body": "sure?", "anchor": {"from": 4, "to": 8}})
    thread = r.json()["thread_id"]
    r = await collab.call("POST", f"{path}/{thread}/replies", user="u2", json={"body": "yes"})
    reply = r.json()["comment_id"]
    assert (await collab.call("DELETE", f"{path}/{thread}/{reply}", user="u2")).status_code == 200
    assert (await collab.call("POST", f"/v1/letters/{lid}/locks/intro")).status_code == 200
    assert (await collab.call("DELETE", f"/v1/letters/{lid}/locks/intro")).status_code == 200

    await migrate(pg_database)
    store = await Store.open(pg_database)
    try:
        await drain(Snapshotter(collab.gw.settings, collab.gw.log, store), collab.gw.log)
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_database)
    try:
        rows = await conn.fetch(
            "SELECT change_type, user_id FROM collaboration WHERE letter_id = $1 "
            "AND change_type LIKE ANY (ARRAY['comment.%', 'lock.%']) ORDER BY log_offset",
            lid,
        )
        comments = await conn.fetch(
            "SELECT comment_id, deleted_by, body FROM comments WHERE letter_id = $1 "
            "ORDER BY created_at, comment_id",
            lid,
        )
    finally:
        await conn.close()
    assert [(r["change_type"], r["user_id"]) for r in rows] == [
        ("comment.created", "u1"),
        ("comment.replied", "u2"),
        ("comment.deleted", "u2"),
        ("lock.acquired", "u1"),
        ("lock.released", "u1"),
    ]
    assert [(c["deleted_by"], c["body"]) for c in comments] == [(None, "sure?"), ("u2", "yes")]
