"""History, diff and verify through their functions, on both logs."""

import random
from dataclasses import replace

from pycrdt import XmlElement, XmlText

from eventlog import Log
from schemas import VersionSaved
from schemas.settings import Settings
from tests.tools.scripted import LETTER, scripted
from tests.tools.session import Session
from tests.tools.snapshots import snapshot_all
from tools.backfill import backfill
from tools.diff import diff, format_text, resolve_point
from tools.history import Entry, describe, history
from tools.history import format_text as history_text
from tools.progress import Meter
from tools.replay import Cut, replay
from tools.sources import open_sources
from tools.timefmt import iso
from tools.verify import all_letters, verify_letter


async def test_history_from_postgres_and_from_the_log(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    await snapshot_all(settings, log)
    async with open_sources(settings, pg=True) as src:
        from_pg = await history(src, LETTER)
    async with open_sources(settings) as src:
        from_log = await history(src, LETTER)
    kinds = [e.kind for e in from_pg]
    assert kinds.count("session-start") == 2 and kinds.count("session-end") == 2
    assert kinds.count("version") == 2 and "comment.created" in kinds
    edits = [(e.user, e.data) for e in from_pg if e.kind == "edit"]
    # user-1's typing and deletion are two rows: version 1 ("draft") closed her burst.
    assert [(d["inserted"], d["deleted"]) for u, d in edits if u == "user-1"] == [(10, 0), (0, 5)]
    assert [d["inserted"] for u, d in edits if u == "user-2"] == [len("Regards")]
    assert [d.get("initial") for u, d in edits if u == "user-0"] == [True]  # created with it
    assert [(e.kind, e.user, e.offset) for e in from_log] == [
        (e.kind, e.user, e.offset) for e in from_pg
    ]
    text = history_text(from_pg)
    assert "edited: +10 -0 characters" in text and "edited: +0 -5 characters" in text
    assert 'saved version 2 (named "final"' in text and "created the content: +" in text
    # A version nobody chose to save reads as cut by its user's edit or leave, not saved by them.
    session_end = {**next(e for e in from_pg if e.kind == "version").data, "type": "session-end"}
    assert describe(replace(from_pg[0], kind="version", data=session_end)).startswith(
        "triggered version"
    )
    later = await _history_since(settings, from_pg[-1].at_ms)
    assert later and all(e.at_ms >= from_pg[-1].at_ms for e in later)


async def _history_since(settings: Settings, since: int) -> list[Entry]:
    async with open_sources(settings, pg=True) as src:
        return await history(src, LETTER, since_ms=since)


async def test_diff_attributes_each_change(settings: Settings, log: Log) -> None:
    _, (first, second) = await scripted(log, settings)
    await snapshot_all(settings, log)
    async with open_sources(settings, pg=True) as src:
        by_version = await diff(
            src,
            LETTER,
            await resolve_point(src, LETTER, "1"),
            await resolve_point(src, LETTER, "2"),
        )
        by_time = await diff(
            src, LETTER, await resolve_point(src, LETTER, iso(first)), Cut(at_ms=second)
        )
    for result in (by_version, by_time):
        changes = [(h.removed, h.added, h.authors) for h in result.hunks]
        assert changes == [
            (["Dear Sir,"], ["Sir,"], ["user-1"]),
            ([], ["Regards"], ["user-2"]),
        ]
    text = format_text(by_version)
    assert "@@ line 1 @@ by user-1\n-Dear Sir,\n+Sir," in text
    assert "@@ line 3 @@ by user-2\n+Regards" in text


async def test_verify_catches_corrupted_redis_and_postgres(settings: Settings, log: Log) -> None:
    await scripted(log, settings)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        assert await all_letters(src) == [LETTER]
        assert all(f.ok for f in await verify_letter(src, LETTER))
        early = await replay(src, LETTER, Cut(offset=3))  # a real state, but an older one
        assert src.redis is not None
        await src.redis.set(f"ydoc:{LETTER}", early.state)
        await src.pg.execute(
            "UPDATE letter_version SET content = 'Dear Madam' WHERE letter_id = $1"
            " AND version_number = (SELECT max(version_number) FROM letter_version"
            " WHERE letter_id = $1)",
            LETTER,
        )
        findings = await verify_letter(src, LETTER)
    bad = {f.store: " / ".join(g.what for g in findings if g.store == f.store and not g.ok)
           for f in findings if not f.ok}  # fmt: skip
    assert set(bad) == {"redis", "postgres"}
    assert "text differs" in bad["redis"]
    assert "content column differs" in bad["postgres"] and "Dear Madam" in bad["postgres"]


async def test_verify_accepts_nul_characters_stored_as_replacement_characters(
    settings: Settings, log: Log
) -> None:
    """PostgreSQL cannot hold U+0000: the snapshotter stores U+FFFD (snapshotter/pgtext.py),
    which is what verify expects of the columns, while the Yjs state keeps the original."""
    session = Session(log, settings, "nul-letter", random.Random(0))
    await session.create("Dear\x00Sir")
    _, one, _ = session.clients
    await session.join(one)
    one.root.children.append(XmlElement("paragraph", {}, [XmlText("a\x00b \\u0000")]))
    await session.quiesce()
    await session.append(VersionSaved(label="with\x00nul"), one.user)
    async with open_sources(settings, redis=True, pg=True) as src:
        await backfill(src, "all", meter=Meter(every_s=3600))
        findings = await verify_letter(src, "nul-letter")
        stored = await src.pg.fetchval(
            "SELECT content FROM letter_version WHERE letter_id = 'nul-letter'"
        )
    assert stored == "Dear\ufffdSir\na\ufffdb \\u0000"
    assert [f.what for f in findings if not f.ok] == []
