"""Comment events racing gateways logged (README "Comments", "Races"), materialised: a thread
is live while one of its comments is; replies, edits, resolves and reopens to a gone thread are
void (its tombstone rows stay as they were), and every event is still audited."""

import json
from collections.abc import Callable

import asyncpg

from eventlog.embedded import EmbeddedLog
from snapshotter.consumer import Snapshotter
from tests.comment_races import RACES_LIVE, races
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import append, drain


async def test_racing_comment_events_materialise_what_the_log_order_leaves(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    events = races("R1")
    await append(elog, LETTERS, events)
    await drain(snap_factory(), elog)
    conn = await asyncpg.connect(db)
    try:
        threads = {r["thread_id"]: r for r in await conn.fetch("SELECT * FROM comment_threads")}
        comments = {r["comment_id"]: r for r in await conn.fetch("SELECT * FROM comments")}
        audited = await conn.fetchval("SELECT count(*) FROM collaboration WHERE letter_id = 'R1'")
    finally:
        await conn.close()
    live: dict[str, tuple[bool, list[tuple[str, str, str]]]] = {}
    for c in sorted(comments.values(), key=lambda c: (c["created_at"], c["comment_id"])):
        if c["deleted_at"] is None:
            thread = threads[c["thread_id"]]
            _, rows = live.setdefault(thread["thread_id"], (thread["status"] == "resolved", []))
            rows.append((c["comment_id"], c["author_id"], c["body"]))
    assert live == RACES_LIVE
    # The tombstones stay as the deletes left them.
    assert set(comments) == {"c1", "c2", "c3", "r3", "c4", "c5", "c6"}
    assert threads["t1"]["status"] == "open" and threads["t1"]["resolved_by"] is None
    assert comments["c2"]["body"] == "second" and comments["c2"]["edited_at"] is None
    assert comments["c3"]["body"] == "third"
    assert threads["t5"]["created_by"] == "bob" and threads["t5"]["resolved_at"] is None
    assert json.loads(threads["t5"]["anchor"])["quote"] == "quote of c6"
    assert audited == len(events)  # the audit has every event, void ones included
