"""Version policy end to end: events in the embedded log, versions in real PostgreSQL."""

import json
from collections.abc import Callable

import asyncpg
import pytest

from eventlog.embedded import EmbeddedLog
from schemas.events import RECONNECTING, SHUTDOWN_REASON
from snapshotter.consumer import Snapshotter
from snapshotter.fold import REJOIN_MS
from snapshotter.store import StalePositionError
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, LetterScript, append, drain


def data(row: asyncpg.Record) -> dict[str, object]:
    result: dict[str, object] = json.loads(row["data"])
    return result


async def versions(db: str, letter_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT version_number, content, change_data::text AS data, log_offset"
            " FROM letter_version WHERE letter_id = $1 ORDER BY version_number",
            letter_id,
        )
    finally:
        await conn.close()
    return rows


async def test_autosave_every_n_updates_skips_identical_content(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s = LetterScript("L-count")
    await append(
        elog, LETTERS, [s.created(), s.paragraph("alice", "A"), s.type_text("bob", 0, 1, "B")]
    )
    # Back to identical content "AB": no new autosave; then a real change makes version 2.
    await append(elog, LETTERS, [s.type_text("alice", 0, 2, "C"), s.delete("alice", 0, 2, 1)])
    await append(elog, LETTERS, [s.type_text("bob", 0, 2, "D"), s.type_text("bob", 0, 3, "E")])
    await drain(snap_factory(autosave_updates=2), elog)
    rows = await versions(db, "L-count")
    assert [(r["version_number"], r["content"]) for r in rows] == [(1, "AB"), (2, "ABDE")]
    assert data(rows[0])["contributors"] == ["alice", "bob"]
    assert data(rows[1]) == {"type": "autosave", "label": "", "contributors": ["bob"], "updates": 2}


async def test_autosave_after_minutes_of_activity_in_record_time(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str, clock: Clock
) -> None:
    s = LetterScript("L-time")
    await append(elog, LETTERS, [s.created(), s.paragraph("alice", "one")])
    clock.advance(200)
    await append(elog, LETTERS, [s.type_text("alice", 0, 3, " two")])
    assert await versions(db, "L-time") == []
    clock.advance(100)  # 300 s of activity since the first update
    await append(elog, LETTERS, [s.type_text("alice", 0, 7, " three")])
    await drain(snap_factory(autosave_activity_s=300), elog)
    rows = await versions(db, "L-time")
    assert [(r["version_number"], r["content"]) for r in rows] == [(1, "one two three")]


async def test_session_end_and_named_versions(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str, clock: Clock
) -> None:
    s = LetterScript("L-sess")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c1"), s.joined("bob", "c2")])
    await append(elog, LETTERS, [s.paragraph("alice", "Dear Sir,"), s.paragraph("bob", "Pay.")])
    await append(elog, LETTERS, [s.left("alice", "c1")])  # bob is still here: no version
    clock.advance(60)
    await append(elog, LETTERS, [s.save("bob", "Draft 1"), s.left("bob", "c2")])
    await append(elog, LETTERS, [s.joined("carol", "c3"), s.left("carol", "c3")])  # no change
    await append(elog, LETTERS, [s.save("carol", "Final")])  # named: even if identical
    await drain(snap_factory(), elog)
    rows = await versions(db, "L-sess")
    assert [(r["version_number"], r["content"]) for r in rows] == [
        (1, "Dear Sir,\nPay."),
        (2, "Dear Sir,\nPay."),
    ]
    first, second = data(rows[0]), data(rows[1])
    assert first == {
        "type": "named",
        "label": "Draft 1",
        "contributors": ["alice", "bob"],
        "updates": 2,
    }
    assert second == {"type": "named", "label": "Final", "contributors": [], "updates": 0}


async def test_session_end_version_when_last_collaborator_leaves(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s = LetterScript("L-leave")
    events = [s.created(), s.joined("alice", "c1"), s.paragraph("alice", "Hello")]
    await append(elog, LETTERS, [*events, s.left("alice", "c1")])
    await drain(snap_factory(), elog)
    rows = await versions(db, "L-leave")
    assert len(rows) == 1 and data(rows[0])["type"] == "session-end"
    assert rows[0]["content"] == "Hello"


@pytest.mark.parametrize("reason", sorted(RECONNECTING))
async def test_a_drained_gateways_sessions_go_on_when_their_users_rejoin(
    elog: EmbeddedLog,
    snap_factory: Callable[..., Snapshotter],
    db: str,
    clock: Clock,
    reason: str,
) -> None:
    """A rolling restart (the drain's reason) or a log outage closing the letter's clients
    with 4503 (the room's reasons): both users are back at once, the session goes on."""
    s = LetterScript("L-deploy")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c1"), s.joined("bob", "c2")])
    await append(elog, LETTERS, [s.paragraph("alice", "Dear Sir,")])
    drained = [s.left("alice", "c1", reason), s.left("bob", "c2", reason)]
    await append(elog, LETTERS, drained)
    clock.advance(2)
    await append(elog, LETTERS, [s.joined("bob", "c3"), s.joined("alice", "c4")])
    await append(elog, LETTERS, [s.paragraph("bob", "Pay."), s.left("bob", "c3")])
    await drain(snap_factory(), elog)
    assert await versions(db, "L-deploy") == []  # alice is still here
    await append(elog, LETTERS, [s.left("alice", "c4")])
    await drain(snap_factory(), elog)
    rows = await versions(db, "L-deploy")
    assert [(r["content"], data(r)["type"]) for r in rows] == [("Dear Sir,\nPay.", "session-end")]


async def test_a_drained_session_nobody_resumes_ends_as_of_the_drain(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str, clock: Clock
) -> None:
    s = LetterScript("L-night")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c1")])
    await append(elog, LETTERS, [s.paragraph("alice", "Dear Sir,")])
    offsets = await append(elog, LETTERS, [s.left("alice", "c1", SHUTDOWN_REASON)])
    left_ms = clock()
    # Folded by one snapshotter, decided by the next (the put-off end is in the saved state).
    await drain(snap_factory(), elog)
    assert await versions(db, "L-night") == []
    clock.advance(REJOIN_MS / 1000 + 1)
    await append(elog, LETTERS, [s.joined("bob", "c2"), s.paragraph("bob", "Pay.")])
    await drain(snap_factory(), elog)
    rows = await versions(db, "L-night")
    assert [(r["content"], data(r)["type"]) for r in rows] == [("Dear Sir,", "session-end")]
    assert rows[0]["log_offset"] == offsets[0] + 1
    conn = await asyncpg.connect(db)
    try:
        audit = await conn.fetchrow(
            'SELECT user_id, log_offset, "timestamp" FROM collaboration'
            " WHERE letter_id = $1 AND change_type = 'version'",
            "L-night",
        )
    finally:
        await conn.close()
    assert audit is not None
    assert (audit["user_id"], audit["log_offset"]) == ("alice", offsets[0])
    assert int(audit["timestamp"].timestamp() * 1000) == left_ms


async def test_a_second_instance_with_a_stale_position_writes_nothing(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s = LetterScript("L-fence")
    await append(elog, LETTERS, [s.created(), s.paragraph("alice", "x"), s.save("alice", "v")])
    first, zombie = snap_factory(), snap_factory()
    await first.resume()
    await zombie.resume()  # both start from position 0
    partition = elog.partition_for(LETTERS, b"L-fence")
    records = await elog.read(LETTERS, partition, 0, 100)
    await first.handle(records)
    await first.flush()
    await zombie.handle(records)
    with pytest.raises(StalePositionError):
        await zombie.flush()
    assert len(await versions(db, "L-fence")) == 1
