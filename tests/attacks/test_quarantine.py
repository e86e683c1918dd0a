"""Defence in depth (issue 9, item 6): a record that crashes the snapshotter's fold (here a
real pycrdt panic, which the gateway's pre-parser would have refused) is retried a bounded
number of times, then quarantined with its position, counted, and skipped; the projector
likewise (with an injected crash, see below)."""

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from eventlog.embedded import EmbeddedLog
from eventlog.factory import open_log, topic_retention
from projector import consumer as projector_consumer
from projector import fold as projector_fold
from projector import quarantine as projector_quarantine
from projector.quarantine import MAX_ATTEMPTS as PROJECTOR_ATTEMPTS
from schemas.envelope import new_event
from schemas.events import Topic
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.migrate import migrate
from snapshotter.quarantine import MAX_ATTEMPTS
from snapshotter.store import Store
from tests.attacks.panics import Panic, panicking_update
from tests.projector.support import Editor, caught_up, created, doc_text, projector
from tests.projector.support import append as append_events
from tests.snapshotter.scripts import LetterScript, append
from tests.support import eventually


async def test_snapshotter_quarantines_a_panicking_record(tmp_path: Path, pg_database: str) -> None:
    await migrate(pg_database)
    settings = Settings(data_dir=tmp_path, database_url=pg_database, partitions=1)
    settings = settings.model_copy(update={"autosave_updates": 1})
    topic = settings.topic(Topic.LETTERS)
    log = EmbeddedLog(tmp_path / "log", 1, topic_retention(settings))
    await log.start()
    store = await Store.open(pg_database)
    s = LetterScript("L-poison")
    first = s.paragraph("alice", "before")
    poison = new_event(
        s.letter_id,
        panicking_update(s.doc.client_id, 0),
        firm=s.firm,
        user="mallory",
        type="doc.update",
    )
    await append(log, topic, [s.created(), first, poison, s.paragraph("alice", "after")])
    snapshotter = Snapshotter(settings, log, store)
    task = asyncio.create_task(snapshotter.run())
    try:
        await eventually(lambda: snapshotter.positions.get(0) == 4, timeout=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        await log.close()
    assert snapshotter.folder.stats["quarantined"] == 1
    conn = await asyncpg.connect(pg_database)
    try:
        row = await conn.fetchrow("SELECT * FROM quarantine")
        content = await conn.fetchval(
            "SELECT content FROM letter_version ORDER BY version_number DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert (row["consumer"], row["log_topic"], row["log_partition"], row["log_offset"]) == (
        "snapshotter",
        topic,
        0,
        2,
    )
    assert row["attempts"] == MAX_ATTEMPTS and "Panic" in row["error"]
    assert row["letter_id"] == "L-poison" and row["event_type"] == "doc.update"
    assert "before" in content and "after" in content  # the partition went on


async def test_projector_quarantines_a_record_that_crashes_the_fold(
    tmp_path: Path, redis_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The projector merges a batch before applying it, and merge_updates drops the empty client
    # section that panics Yrs, so no known input crashes it: the crash is injected.
    ed = Editor("Q1")
    first = ed.event(ed.paragraph("before"))
    poison = ed.event(ed.paragraph("poison"))
    real = projector_fold.fold_letter

    def crashing(state: Any, items: Any, doc_field: str) -> Any:
        if any(item.event.envelope.id == poison.envelope.id for item in items):
            raise Panic("injected")
        return real(state, items, doc_field)

    monkeypatch.setattr(projector_consumer, "fold_letter", crashing)
    monkeypatch.setattr(projector_quarantine, "fold_letter", crashing)
    settings = Settings(data_dir=tmp_path / "steno", redis_url=redis_db, partitions=1)
    log = open_log(settings)
    await log.start()
    client = aioredis.Redis.from_url(redis_db)
    try:
        await append_events(log, settings, [created("Q1"), first, poison])
        other = Editor("Q1", user="u2")  # knows "before" only: its edit does not depend on
        assert isinstance(first.payload, bytes)  # the quarantined record
        other.doc.apply_update(first.payload)
        await append_events(log, settings, [other.event(other.paragraph("after"))])
        async with projector(settings, log):
            await caught_up(log, settings, client)
        text = doc_text(await client.get("ydoc:Q1"))
        assert "before" in text and "after" in text and "poison" not in text
        letters = settings.topic(Topic.LETTERS)
        entry = json.loads(await client.hget("projector:quarantine", f"{letters}/0/2") or "null")
        assert entry["letter_id"] == "Q1" and entry["event_type"] == "doc.update"
        assert entry["attempts"] == PROJECTOR_ATTEMPTS and "injected" in entry["error"]
        assert await client.hlen("projector:quarantine") == 1
    finally:
        await client.aclose()
        await log.close()


async def test_snapshotter_quarantines_a_record_the_database_refuses(
    tmp_path: Path, pg_database: str
) -> None:
    """A net under snapshotter/pgtext.py: a record whose rows PostgreSQL refuses (here a CHECK
    the test adds; before pgtext, a U+0000 or a NaN did the same) failed its batch's commit,
    and the same batch after every restart: the snapshotter stopped for good. The batch's
    records are now committed one by one, and the one refused is retried, then quarantined;
    the records around it, in the same batch, are stored. The batch is the log's last: its
    failed commit must surface while the log is quiet (it used to wait for the next batch)."""
    await migrate(pg_database)
    conn = await asyncpg.connect(pg_database)
    await conn.execute("ALTER TABLE comments ADD CHECK (body <> 'the database refuses this')")
    await conn.close()
    settings = Settings(data_dir=tmp_path, database_url=pg_database, partitions=1)
    topic = settings.topic(Topic.LETTERS)
    log = EmbeddedLog(tmp_path / "log", 1, topic_retention(settings))
    await log.start()
    store = await Store.open(pg_database)
    s = LetterScript("L-refused")
    events = [
        s.created(),
        s.comment("alice", "t1", "c1", "fine"),
        s.comment("mallory", "t2", "c2", "the database refuses this"),
        s.comment("alice", "t3", "c3", "also fine"),
    ]
    await append(log, topic, events)
    snapshotter = Snapshotter(settings, log, store)
    task = asyncio.create_task(snapshotter.run())
    try:
        await eventually(lambda: snapshotter.positions.get(0) == 4 or task.done(), timeout=30)
        assert not task.done(), task.exception()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
        await log.close()
    conn = await asyncpg.connect(pg_database)
    try:
        bodies = [r["body"] for r in await conn.fetch("SELECT body FROM comments ORDER BY body")]
        rows = await conn.fetch("SELECT log_offset, attempts, error FROM quarantine")
    finally:
        await conn.close()
    assert bodies == ["also fine", "fine"]
    assert [(r["log_offset"], r["attempts"]) for r in rows] == [(2, MAX_ATTEMPTS)]
    assert "CheckViolation" in rows[0]["error"]
