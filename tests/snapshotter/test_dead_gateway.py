"""A gateway that dies logs no session.left: the projector's sweep logs it for its connections,
and the snapshotter's session-end versions go on (README "Operations": stale connections)."""

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import replace

import asyncpg

from eventlog.embedded import EmbeddedLog
from projector.entry import run
from projector.settings import ProjectorSettings
from schemas import Event, SessionJoined, SessionLeft, decode_record, new_event
from schemas.events import LOG_FAILED_REASON
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, LetterScript, append, drain
from tests.support import eventually

SWEEP = ProjectorSettings(
    metrics_port=None, check_interval_s=0.1, sweep_interval_s=0.2, stale_after_s=0.0
)


async def rows(db: str, letter_id: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    conn = await asyncpg.connect(db)
    try:
        versions = await conn.fetch(
            "SELECT version_number, content, change_data->>'type' AS type FROM letter_version"
            " WHERE letter_id = $1 ORDER BY version_number",
            letter_id,
        )
        audit = await conn.fetch(
            "SELECT user_id, change_type, change_data::text AS data FROM collaboration"
            " WHERE letter_id = $1 ORDER BY log_offset",
            letter_id,
        )
    finally:
        await conn.close()
    return versions, audit


async def logged_left(log: EmbeddedLog, letter_id: str) -> list[Event]:
    partition = log.partition_for(LETTERS, letter_id.encode())
    events = [
        decode_record(r.key, r.value, r.headers) for r in await log.read(LETTERS, partition, 0)
    ]
    return [e for e in events if e.type == "session.left"]


async def sweep_once(settings: Settings, log: EmbeddedLog, letter_id: str) -> Event:
    """Run the real projector until its sweep has logged the session.left of `letter_id`."""
    task = asyncio.create_task(run(settings, SWEEP, log))
    try:
        [left] = await eventually(lambda: logged_left(log, letter_id), 15)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return left


async def test_a_dead_gateways_session_ends_so_the_next_last_leave_cuts_a_version(
    elog: EmbeddedLog,
    clock: Clock,
    snap_factory: Callable[..., Snapshotter],
    make_settings: Callable[..., Settings],
    redis_db: str,
    db: str,
) -> None:
    s = LetterScript("L-dead-gw")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c-alice", gw="gw-alice")])
    clock.advance(1)
    await append(elog, LETTERS, [s.paragraph("alice", "Alice's text")])
    # alice's gateway dies here: it logs nothing more; its alive key is never set.
    left = await sweep_once(make_settings(redis_url=redis_db), elog, s.letter_id)
    clock.advance(3600)  # an hour later bob works on the letter and leaves normally
    await append(elog, LETTERS, [s.joined("bob", "c-bob")])
    clock.advance(1)
    await append(elog, LETTERS, [s.paragraph("bob", "Bob's text")])
    clock.advance(10)
    await append(elog, LETTERS, [s.paragraph("bob", "Bob's last words")])
    clock.advance(60)
    await append(elog, LETTERS, [s.left("bob", "c-bob")])
    snapshotter = snap_factory()
    await drain(snapshotter, elog)
    versions, audit = await rows(db, s.letter_id)
    assert versions[-1]["type"] == "session-end"
    assert versions[-1]["content"] == "Alice's text\nBob's text\nBob's last words"
    assert [(v["type"], v["content"]) for v in versions[:1]] == [("session-end", "Alice's text")]
    ends = [json.loads(a["data"]) for a in audit if a["change_type"] == "session-end"]
    assert [(e["conn_id"], e["reason"]) for e in ends] == [
        ("c-alice", "gateway gone: gw-alice"),
        ("c-bob", "closed"),
    ]
    # The same session.left once more (a second sweep around a rebalance): no second version.
    again = new_event(
        s.letter_id,
        left.payload,
        firm=left.envelope.firm,
        user=left.envelope.user,
        conn=left.envelope.conn,
        gw=left.envelope.gw,
    )
    await append(elog, LETTERS, [again])
    await drain(snapshotter, elog)
    assert (await rows(db, s.letter_id))[0] == versions


async def test_a_session_left_for_a_session_not_held_ends_nothing(
    elog: EmbeddedLog, clock: Clock, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s = LetterScript("L-twice")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c-alice")])
    await append(elog, LETTERS, [s.paragraph("alice", "one")])
    joined = s.joined("alice", "c-alice").payload
    assert isinstance(joined, SessionJoined)
    gone = SessionLeft(
        conn_id="c-alice",
        user=joined.user,
        role="editor",
        reason="gateway gone: gw-a",
    )
    by_projector = new_event(s.letter_id, gone, firm=s.firm, user="alice", conn="c-alice")
    await append(elog, LETTERS, [by_projector])  # the last session ends: version 1
    clock.advance(2)
    # The gateway was cut off from Redis only: an update it had taken lands late, then its own
    # session.left for the connection. Nobody held a session: no session-end version for it.
    await append(elog, LETTERS, [s.type_text("alice", 0, 3, " two"), s.left("alice", "c-alice")])
    snapshotter = snap_factory()
    await drain(snapshotter, elog)
    versions, audit = await rows(db, s.letter_id)
    assert [(v["version_number"], v["content"]) for v in versions] == [(1, "one")]
    ends = [json.loads(a["data"]) for a in audit if a["change_type"] == "session-end"]
    assert [(e["reason"], e["started_at_ms"]) for e in ends][1] == ("closed", None)
    edits = [a["user_id"] for a in audit if a["change_type"] == "edit"]
    assert edits == ["alice", "alice"]  # her late burst closes with her session.left
    # The next session that ends takes the late edit into its version.
    clock.advance(60)
    await append(elog, LETTERS, [s.joined("bob", "c-bob"), s.left("bob", "c-bob")])
    await drain(snapshotter, elog)
    versions, _ = await rows(db, s.letter_id)
    assert [(v["version_number"], v["content"], v["type"]) for v in versions] == [
        (1, "one", "session-end"),
        (2, "one two", "session-end"),
    ]


async def test_a_dead_gateways_session_ends_when_it_was_last_seen(
    elog: EmbeddedLog, clock: Clock, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    """The projector logs it a minute or more after the gateway died, dated (the envelope's
    `ts`) by its last heartbeat: the audit's session lasted until then, not until the record
    (an auditor saw a 7 s session as 78 s, overlapping the user's next one)."""
    s = LetterScript("L-last-seen")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c-alice", gw="gw-a")])
    joined_ms = clock()
    clock.advance(70)  # logged by the sweep 70 s on; the gateway was last seen 5 s in
    gone = s.left("alice", "c-alice", reason="gateway gone: gw-a")
    gone = replace(gone, envelope=replace(gone.envelope, ts=joined_ms + 5000))
    await append(elog, LETTERS, [gone, s.joined("alice", "c-alice-2")])
    clock.advance(1)
    await append(elog, LETTERS, [s.left("alice", "c-alice-2")])
    await drain(snap_factory(), elog)
    _, audit = await rows(db, s.letter_id)
    ends = [json.loads(a["data"]) for a in audit if a["change_type"] == "session-end"]
    assert [(e["conn_id"], e["duration_ms"], e.get("ended_at_ms")) for e in ends] == [
        ("c-alice", 5000, joined_ms + 5000),
        ("c-alice-2", 1000, None),  # a session its gateway ended: its record's time
    ]


async def test_a_second_session_left_for_a_dead_gateways_session_is_dated_alike(
    elog: EmbeddedLog, clock: Clock, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    """A sweep may log it twice (around a rebalance): the second row, of a session no longer
    held, gives the same end, not its own record's time."""
    s = LetterScript("L-twice-gone")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c-alice", gw="gw-a")])
    joined_ms = clock()
    clock.advance(70)
    lefts = []
    for _ in range(2):
        gone = s.left("alice", "c-alice", reason="gateway gone: gw-a")
        lefts.append(replace(gone, envelope=replace(gone.envelope, ts=joined_ms + 5000)))
    await append(elog, LETTERS, lefts[:1])
    clock.advance(10)
    await append(elog, LETTERS, lefts[1:])
    await drain(snap_factory(), elog)
    _, audit = await rows(db, s.letter_id)
    ends = [json.loads(a["data"]) for a in audit if a["change_type"] == "session-end"]
    assert [e.get("ended_at_ms") for e in ends] == [joined_ms + 5000, joined_ms + 5000]


async def test_a_session_the_log_failed_under_ends_when_its_gateway_closed_it(
    elog: EmbeddedLog, clock: Clock, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    """The log failed under the letter: the gateway closed its connections (4503) and its
    session.left waited with the rescue for the log to come back, 110 s. The audit ended the
    session at the record (a 134 s session read 244 s, found over a Kafka outage); it ends
    when the gateway closed it, the envelope's `ts`."""
    s = LetterScript("L-rescued-left")
    await append(elog, LETTERS, [s.created(), s.joined("alice", "c-alice")])
    joined_ms = clock()
    clock.advance(244)
    late = s.left("alice", "c-alice", reason=LOG_FAILED_REASON)
    late = replace(late, envelope=replace(late.envelope, ts=joined_ms + 134_000))
    await append(elog, LETTERS, [late])
    await drain(snap_factory(), elog)
    _, audit = await rows(db, s.letter_id)
    ends = [json.loads(a["data"]) for a in audit if a["change_type"] == "session-end"]
    assert [(e["duration_ms"], e.get("ended_at_ms")) for e in ends] == [
        (134_000, joined_ms + 134_000)
    ]
