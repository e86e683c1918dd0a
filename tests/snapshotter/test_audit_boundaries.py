"""What the audit trail says about removed blocks, formatting, versions and a letter's initial
content: a removed paragraph counts its characters as deleted, formatting is counted (only where
it changed), no edit row spans a version, the content a letter was created with is a row of its
own, and a version's contributors are those whose edits it holds, not whoever left last."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pycrdt import XmlElement, XmlText

from eventlog.embedded import EmbeddedLog
from schemas.ids import uuid7_ms
from snapshotter import read
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from snapshotter.fold import Folder
from tests.interop.conftest import node_modules  # noqa: F401 (the fixture: `npm ci` if needed)
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import Clock, LetterScript, append, drain
from tests.support import node_json
from tools.history import Entry, describe

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def blocks(node_modules: Path) -> dict[str, Any]:  # noqa: F811
    found: dict[str, Any] = node_json(HERE / "yjs_blocks.cjs", node_modules)
    return found


def test_removed_blocks_and_formatting_are_counted_in_characters(blocks: dict[str, Any]) -> None:
    """Stock Yjs, as y-prosemirror edits: `fragment.delete(i, 1)` deletes the block's text;
    marks set or cleared count the characters whose formatting changed (yrs reports a cleared
    mark up to the text's end); a block attribute reformats the block's characters. A document
    loaded from the state just before each update counts it alike."""
    kept = LetterDocument("default", bytes.fromhex(blocks["base"]))
    for step in blocks["steps"]:
        update = bytes.fromhex(step["update"])
        loaded = LetterDocument("default", kept.state()).apply(update)
        delta = kept.apply(update)
        assert (step["name"], delta.deleted, delta.formatted, delta.inserted) == (
            step["name"],
            step["deleted"],
            step["formatted"],
            0,
        )
        assert delta.paragraphs and loaded == delta


async def test_rows_say_who_removed_formatted_and_created_what_and_never_span_a_version(
    elog: EmbeddedLog,
    snap_factory: Callable[..., Snapshotter],
    db: str,
    clock: Clock,
    make_settings: Callable[..., Any],
) -> None:
    s = LetterScript("L-bounds")
    opening = ["Dear Sir,", "Damages total $12,500.", "Regards"]

    def initial() -> None:
        for text in opening:
            s.body.children.append(XmlElement("paragraph", None, [XmlText(text)]))

    def remove_damages() -> None:
        del s.body.children[1]

    def align() -> None:
        element = s.body.children[0]
        assert isinstance(element, XmlElement)
        element.attributes["textAlign"] = "center"

    # As POST /v1/letters appends them: letter.created, then its content, in one append.
    created, _ = await append(elog, LETTERS, [s.created("alice"), s._update("alice", initial)])
    clock.advance(0.1)
    await append(elog, LETTERS, [s.joined("alice", "c1"), s.joined("bob", "c2")])
    clock.advance(1)
    await append(elog, LETTERS, [s.type_text("alice", 0, 9, " X")])  # in the content's window
    clock.advance(1)
    await append(elog, LETTERS, [s.save("alice", "v1")])
    v1_ms = clock.ms
    clock.advance(1)  # alice types on within her burst's window, after the version
    await append(elog, LETTERS, [s.type_text("alice", 0, 0, "Y")])
    clock.advance(1)
    await append(elog, LETTERS, [s._update("alice", remove_damages)])
    clock.advance(1)
    bold = s._update("alice", lambda: s._text(0).format(1, 5, {"bold": True}))
    await append(elog, LETTERS, [bold, s.joined("carol", "c3")])
    clock.advance(10)
    await append(elog, LETTERS, [s._update("carol", align)])
    clock.advance(1)
    await append(elog, LETTERS, [s.left("alice", "c1"), s.left("carol", "c3")])
    clock.advance(1)
    await append(elog, LETTERS, [s.left("bob", "c2")])  # bob never edited; he leaves last
    await drain(snap_factory(), elog)

    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        rows = await read.audit_rows(pool, "L-bounds")
        after_v1 = await read.audit_rows(
            pool, "L-bounds", since=dt.datetime.fromtimestamp(v1_ms / 1000, tz=dt.UTC)
        )
    edits = [(r.user_id, r.change_data) for r in rows if r.change_type == "edit"]
    versions = [r for r in rows if r.change_type == "version"]

    # The content the letter was created with: its own row, not alice's typing.
    first = edits[0]
    assert first == (
        "alice",
        {
            "inserted": sum(map(len, opening)),
            "deleted": 0,
            "paragraphs": [0, 1, 2],
            "updates": 1,
            "first_offset": created + 1,
            "last_offset": created + 1,
            "duration_ms": 0,
            "initial": True,
        },
    )
    typed = edits[1]
    assert typed[0] == "alice" and typed[1]["inserted"] == 2 and "initial" not in typed[1]

    # No edit row spans a version: alice's edits after v1 are a row after it.
    assert [v.change_data["version_number"] for v in versions] == [1, 2]
    for _, data in edits:
        for v in versions:
            assert data["last_offset"] < v.log_offset or data["first_offset"] > v.log_offset
    later = [r.change_data for r in after_v1 if r.change_type == "edit" and r.user_id == "alice"]
    assert len(later) == 1
    removed = len(opening[1])
    assert (later[0]["inserted"], later[0]["deleted"], later[0]["formatted"]) == (1, removed, 4)

    # carol only aligned a paragraph: a row (formatting), and she contributed to version 2.
    carol = [data for user, data in edits if user == "carol"]
    assert [(d["inserted"], d["deleted"], d["formatted"]) for d in carol] == [(0, 0, 12)]
    assert versions[0].change_data["contributors"] == ["alice"]
    end = versions[1]
    assert end.change_data["type"] == "session-end" and end.user_id == "bob"
    assert end.change_data["contributors"] == ["alice", "carol"]

    # The snapshotter's rows are the fold's (what backfill and verify compute).
    partition = elog.partition_for(LETTERS, b"L-bounds")
    records = await elog.read(LETTERS, partition, 0, 1000)
    folded = Folder(make_settings()).fold(records).audit
    assert sorted(
        (a.position.offset, a.change_type, a.user_id, a.change_data, a.timestamp_ms)
        for a in folded
        if a.letter_id == "L-bounds"
    ) == sorted(
        (r.log_offset, r.change_type, r.user_id, r.change_data, _ms(r.timestamp)) for r in rows
    )


def _ms(at: dt.datetime) -> int:
    return (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


async def test_a_first_update_long_after_an_empty_creation_is_an_edit(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str, clock: Clock
) -> None:
    """Only the content made with the letter (POST /v1/letters: one request) is "initial": a
    backend's first update to a letter created empty, hours later, is its own typing."""
    s = LetterScript("L-empty")
    update = s.paragraph("svc-intake", "Intake summary")
    made = uuid.UUID(update.envelope.id)
    later = uuid.UUID(int=(uuid7_ms(str(made)) + 2 * 3_600_000) << 80 | made.int & (1 << 80) - 1)
    update = replace(update, envelope=replace(update.envelope, id=str(later)))
    await append(elog, LETTERS, [s.created("alice")])
    clock.advance(2 * 3600)
    await append(elog, LETTERS, [update])
    clock.advance(1)
    await append(elog, LETTERS, [s.save("svc-intake", "v1")])  # closes the burst
    await drain(snap_factory(), elog)
    async with asyncpg.create_pool(db, min_size=1, max_size=1) as pool:
        rows = await read.audit_rows(pool, "L-empty")
    edits = [(r.user_id, r.change_data) for r in rows if r.change_type == "edit"]
    assert len(edits) == 1 and edits[0][0] == "svc-intake", edits
    assert "initial" not in edits[0][1] and edits[0][1]["inserted"] == len("Intake summary")


def test_history_renders_initial_content_and_formatting() -> None:
    data = {"inserted": 38, "deleted": 0, "paragraphs": [0, 1, 2], "updates": 1}
    created = Entry(0, "alice", "edit", {**data, "initial": True}, 1)
    assert describe(created) == "created the content: +38 -0 characters in paragraphs 1, 2, 3"
    formatted = {**data, "inserted": 1, "deleted": 22, "formatted": 4, "duration_ms": 2000}
    assert describe(Entry(0, "alice", "edit", formatted, 9)) == (
        "edited: +1 -22 characters, formatted 4 in paragraphs 1, 2, 3 (1 update, 2.0 s)"
    )
