"""Attributed, coalesced audit rows, materialised comments, bad input and the read API."""

import datetime as dt
import logging
from collections.abc import Callable

import asyncpg
import pytest
from pycrdt import XmlElement, XmlText

from eventlog.embedded import EmbeddedLog
from eventlog.records import Entry
from snapshotter import read
from snapshotter.consumer import Snapshotter
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, LetterScript, append, drain


async def test_edits_coalesce_per_user_per_burst_in_record_time(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str, clock: Clock
) -> None:
    s = LetterScript("L-audit")
    start = clock.ms
    await append(
        elog, LETTERS, [s.created("alice"), s.joined("alice", "c1"), s.joined("bob", "c2")]
    )
    await append(elog, LETTERS, [s.paragraph("alice", "Dear"), s.paragraph("bob", "Re:")])
    clock.advance(1)
    await append(
        elog, LETTERS, [s.type_text("alice", 0, 4, " Sir"), s.type_text("bob", 1, 3, " X")]
    )
    clock.advance(2)
    await append(elog, LETTERS, [s.delete("alice", 0, 0, 1)])
    clock.advance(10)  # past the 5 s window: alice's next edit opens a new burst
    await append(elog, LETTERS, [s.type_text("alice", 0, 0, "d"), s.left("alice", "c1")])
    clock.advance(1)
    await append(elog, LETTERS, [s.left("bob", "c2")])
    await drain(snap_factory(), elog)

    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        rows = await read.audit_rows(pool, "L-audit")
    edits = [(r.user_id, r.change_data) for r in rows if r.change_type == "edit"]
    assert len(edits) == 3
    alice1, bob, alice2 = sorted(edits, key=lambda e: e[1]["first_offset"])
    assert alice1[0] == "alice" and alice1[1]["inserted"] == 8 and alice1[1]["deleted"] == 1
    assert alice1[1]["paragraphs"] == [0] and alice1[1]["updates"] == 3
    assert alice1[1]["duration_ms"] == 3000
    assert bob[0] == "bob" and bob[1]["inserted"] == 5 and bob[1]["paragraphs"] == [1]
    assert alice2[0] == "alice" and alice2[1]["inserted"] == 1 and alice2[1]["updates"] == 1
    assert alice1[1]["first_offset"] < bob[1]["first_offset"] <= bob[1]["last_offset"]

    types = [r.change_type for r in rows]
    assert types.count("session-start") == 2 and types.count("session-end") == 2
    ends = {r.user_id: r.change_data for r in rows if r.change_type == "session-end"}
    assert ends["alice"]["duration_ms"] == 13_000 and ends["bob"]["duration_ms"] == 14_000
    assert "version" in types and "letter.created" in types
    first = rows[0]
    assert first.timestamp == dt.datetime.fromtimestamp(start / 1000, tz=dt.UTC)
    assert first.change_type == "letter.created"
    late = await _audit_since(db, start + 12_000)
    assert {r.user_id for r in late} == {"alice", "bob"}


async def _audit_since(db: str, ms: int) -> list[read.AuditEntry]:
    conn = await asyncpg.connect(db)
    try:
        since = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        return await read.audit_rows(conn, "L-audit", since=since)
    finally:
        await conn.close()


async def test_comments_are_materialised_with_tombstones_and_audited(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    s = LetterScript("L-comments")
    events = [
        s.created(),
        s.comment("alice", "t1", "m1", "Check the amount"),
        s.reply("bob", "t1", "m2", "Done"),
        s.delete_comment("bob", "t1", "m2"),
        s.resolve("alice", "t1"),
        s.reply("bob", "t-unknown", "m3", "orphan"),  # ignored, never a crash
        s.lock("alice", "para-1"),
    ]
    await append(elog, LETTERS, events)
    await drain(snap_factory(), elog)
    conn = await asyncpg.connect(db)
    try:
        thread = await conn.fetchrow("SELECT * FROM comment_threads WHERE thread_id = 't1'")
        comments = await conn.fetch("SELECT * FROM comments ORDER BY created_at, comment_id")
        audit = await conn.fetch(
            "SELECT change_type, user_id FROM collaboration WHERE letter_id = 'L-comments'"
            " ORDER BY log_offset"
        )
    finally:
        await conn.close()
    assert thread["status"] == "resolved" and thread["resolved_by"] == "alice"
    assert [(c["comment_id"], c["deleted_by"]) for c in comments] == [("m1", None), ("m2", "bob")]
    assert comments[1]["body"] == "Done"  # the tombstone keeps what was said
    assert [(a["change_type"], a["user_id"]) for a in audit] == [
        ("letter.created", "u-author"),
        ("comment.created", "alice"),
        ("comment.replied", "bob"),
        ("comment.deleted", "bob"),
        ("comment.resolved", "alice"),
        ("comment.replied", "bob"),
        ("lock.acquired", "alice"),
    ]


async def test_bad_input_is_counted_and_skipped(
    elog: EmbeddedLog,
    snap_factory: Callable[..., Snapshotter],
    db: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s, stranger = LetterScript("L-bad"), LetterScript("L-never-created")
    dup = s.paragraph("alice", "once")
    await append(elog, LETTERS, [s.created(), dup, dup, stranger.paragraph("eve", "x")])
    await elog.append(LETTERS, b"L-bad", [Entry(b"garbage", [("type", b"doc.update")])])
    other_firm = LetterScript("L-bad", firm="firm-2")
    await append(elog, LETTERS, [other_firm.paragraph("mallory", "mine")])
    bad_update = s.paragraph("alice", "x")
    key, _, headers = _encode(bad_update)
    await elog.append(LETTERS, key, [Entry(b"\x01\x02\x03junk", headers)])
    key, _, headers = _encode(s.paragraph("alice", "huge"))
    await elog.append(LETTERS, key, [Entry(b"\x00" * 2048, headers)])
    awareness = s._event("alice", b"\x01\x00", type="awareness.update")  # presence topic's
    await append(elog, LETTERS, [awareness, s.save("alice", "v")])
    snap = snap_factory(max_document_bytes=1024)
    with caplog.at_level(logging.INFO, logger="snapshotter.fold"):
        await drain(snap, elog)
    # A redelivered record is expected (at-least-once): INFO, not one WARNING per copy.
    skips = [
        (r.levelno, r.getMessage()) for r in caplog.records if "skipped record" in r.getMessage()
    ]
    assert [m for lvl, m in skips if "(duplicate)" in m and lvl == logging.INFO], skips
    assert not [m for lvl, m in skips if "(duplicate)" in m and lvl > logging.INFO], skips
    stats = snap.folder.stats
    assert stats["duplicate"] == 1 and stats["unknown_letter"] == 1 and stats["poison"] == 1
    assert stats["wrong_firm"] == 1 and stats["bad_update"] == 1 and stats["oversized"] == 1
    assert stats["wrong_topic"] == 1
    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        latest = await read.latest_version(pool, "L-bad")
        assert latest is not None and latest.content == "once"
        assert latest.document == {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "once"}]}],
        }
        again = await read.version(pool, "L-bad", 1)
        assert again == latest and await read.version(pool, "L-bad", 2) is None
        assert await read.latest_version(pool, "L-never-created") is None


def _encode(event: object) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    from schemas.envelope import Event, encode_event

    assert isinstance(event, Event)
    return encode_event(event)


async def test_nul_characters_are_stored_as_replacement_characters(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    """PostgreSQL's text and jsonb cannot hold U+0000, which any client can type or send. One
    such character in a title, a document, a comment or a user's name used to fail the
    snapshotter's transaction, and the same batch again after every restart: no partition it
    shared got versions or audit rows any more. It is stored as U+FFFD; the log keeps it."""
    s = LetterScript("L-nul")
    await append(elog, LETTERS, [s.created("al\x00ice", title="Re\x00: claim")])
    await append(elog, LETTERS, [s.joined("bob\x00", "c\x00")])
    await append(elog, LETTERS, [s.paragraph("bob\x00", "Dear\x00Sir, \\u0000 is kept")])
    await append(elog, LETTERS, [s.comment("bob\x00", "t\x00", "c\x00", "see\x00this")])
    await append(elog, LETTERS, [s.save("bob\x00", "v\x00"), s.left("bob\x00", "c\x00")])
    snapshotter = snap_factory()
    await drain(snapshotter, elog)

    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        title = await pool.fetchval("SELECT title FROM letters WHERE letter_id = 'L-nul'")
        versions = await read.list_versions(pool, "L-nul")
        latest = await read.version(pool, "L-nul", versions[-1][0])
        bodies = await pool.fetch("SELECT body FROM comments WHERE letter_id = 'L-nul'")
        audit = await read.audit_rows(pool, "L-nul")
    assert title == "Re\ufffd: claim"
    assert latest is not None and latest.content == "Dear\ufffdSir, \\u0000 is kept"
    paragraph = latest.document["content"][0]["content"][0]
    assert paragraph["text"] == "Dear\ufffdSir, \\u0000 is kept"  # a typed "\u0000" stays
    assert {v[2].get("label") for v in versions} >= {"v\ufffd"}
    assert [r["body"] for r in bodies] == ["see\ufffdthis"]
    assert {r.user_id for r in audit} >= {"bob\ufffd"}
    # Nothing held the partition back: the snapshotter's position is past every record.
    end = (await elog.end_offsets(LETTERS))[elog.partition_for(LETTERS, b"L-nul")]
    assert snapshotter.positions[elog.partition_for(LETTERS, b"L-nul")] == end


async def test_numbers_json_cannot_hold_are_stored_as_null(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    """A Yjs attribute may be any JS number, NaN and Infinity included (lib0 writes doubles);
    JSON has neither, and jsonb refused "NaN": the batch failed again after every restart.
    They render as null, as JSON.stringify writes them (and as the editor would read them)."""
    s = LetterScript("L-nan")

    def heading() -> None:
        attrs = {"level": float("nan"), "x": float("inf"), "y": float("-inf"), "n": 2.0}
        # pycrdt annotates attributes as str; Yjs (and pycrdt at runtime) takes any value.
        s.body.children.append(XmlElement("heading", attrs, [XmlText("Title")]))  # type: ignore[arg-type]

    await append(elog, LETTERS, [s.created(), s._update("alice", heading), s.save("alice", "v")])
    snapshotter = snap_factory()
    await drain(snapshotter, elog)
    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        versions = await read.list_versions(pool, "L-nan")
        latest = await read.version(pool, "L-nan", versions[-1][0])
    assert latest is not None and latest.content == "Title"
    assert latest.document["content"][0]["attrs"] == {"level": None, "x": None, "y": None, "n": 2}
    end = (await elog.end_offsets(LETTERS))[elog.partition_for(LETTERS, b"L-nan")]
    assert snapshotter.positions[elog.partition_for(LETTERS, b"L-nan")] == end
