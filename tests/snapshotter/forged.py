"""Updates pycrdt decodes but yrs cannot integrate: a record past the gateway (a restored log,
corruption). One struct whose parent is an item by ID; yrs refuses it (RuntimeError, 'block
parent ... must be deleted or shared ref type') once that item exists and is not a type, and
keeps it pending until then. And `saved_version`: such updates logged, folded, saved."""

from collections.abc import Sequence
from typing import Any

import asyncpg
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog.records import Log
from schemas.envelope import new_event
from snapshotter.consumer import Snapshotter
from tests.preparse import lib0
from tests.snapshotter.scripts import LetterScript, append, drain

FIELD = "default"
AUTHOR = 1  # the client id of `typed`'s author


def forged(parent_client: int, parent_clock: int, client: int = 7) -> bytes:
    """'X' by `client` (clock 0) inside the item <parent_client#parent_clock>."""
    return lib0.update((client, 0, [_inside(parent_client, parent_clock, "X")]))


def half_applied() -> bytes:
    """'P' by client 9 into `typed`'s text, then (yrs integrates clients in descending order)
    a struct by client 7 inside its 'e': refused after the first changed the document."""
    return lib0.update((9, 0, [_inside(AUTHOR, 1, "P")]), (7, 0, [_inside(AUTHOR, 3, "X")]))


def _inside(parent_client: int, parent_clock: int, text: str) -> bytes:
    struct = lib0.uint(4)  # info: a string, no origins: its parent follows
    struct += lib0.uint(0) + lib0.uint(parent_client) + lib0.uint(parent_clock)  # parent by ID
    return struct + lib0.string(text)


def typed(count: int = 28) -> tuple[bytes, list[bytes]]:
    """'Dear Sir' in a paragraph, then 'ab' typed at its end `count` times, one update each.
    The author's clocks: 0 the paragraph, 1 its text, 2-9 'Dear Sir', then two per update."""
    author: Doc[Any] = Doc(client_id=AUTHOR)
    body = author.get(FIELD, type=XmlFragment)
    updates: list[bytes] = []
    author.observe(lambda event: updates.append(event.update))
    body.children.append(XmlElement("paragraph", None, [XmlText("Dear Sir")]))
    text = body.children[0].children[0]
    assert isinstance(text, XmlText)
    for _ in range(count):
        text.insert(len(str(text)), "ab")
    return updates[0], updates[1:]


def typing(client: int, seen: list[bytes], *texts: str) -> list[bytes]:
    """`texts` typed one update each by `client` at the end of `typed`'s text, having `seen`
    those updates."""
    doc: Doc[Any] = Doc(client_id=client)
    for update in seen:
        doc.apply_update(update)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get(FIELD, type=XmlFragment).children[0].children[0]
    assert isinstance(text, XmlText)
    for typed_text in texts:
        text.insert(len(str(text)), typed_text)
    return updates


async def saved_version(
    log: Log, snapshotter: Snapshotter, db: str, letter: str, edits: Sequence[tuple[bytes, str]]
) -> str:
    """Log `letter`'s creation, `edits` (update, user) as doc.update records in that order, and
    a version alice saves; `snapshotter` folds them all. The saved version's content."""
    s = LetterScript(letter)
    updates = [
        new_event(letter, data, firm=s.firm, user=user, type="doc.update") for data, user in edits
    ]
    await append(log, snapshotter.topic, [s.created(), *updates, s.save("alice", "v")])
    await drain(snapshotter, log)
    conn = await asyncpg.connect(db)
    try:
        sql = "SELECT content FROM letter_version WHERE letter_id = $1"
        return str(await conn.fetchval(sql, letter))
    finally:
        await conn.close()
