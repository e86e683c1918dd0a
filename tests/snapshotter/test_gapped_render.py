"""An update missing from a letter's history (quarantined, or still to come) leaves a gap in its
client's clocks; yrs still integrates that client's later updates where their origins are known,
but fires no change event for edits inside a block created past the gap (its item is never
below the state vector). `LetterDocument` re-renders only the blocks events touched, so after
such a history each snapshot must still equal a fresh render of the same document."""

import random
from collections.abc import Callable
from typing import Any

import asyncpg
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from eventlog.embedded import EmbeddedLog
from projector.document import DocUpdate, fold_document
from schemas.envelope import new_event
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument, Snapshot
from tests.snapshotter.coediting import FIELD, late_coedits
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.scripts import LetterScript, append, drain
from tools import verify
from tools.sources import Sources


def _fresh(updates: list[bytes]) -> Snapshot:
    """What the log holding `updates` shows, rendered anew: from the state the projector's
    fold saves, one update at a time (it carries what is pending, as tools/replay renders it)."""
    return LetterDocument(FIELD, _folded(updates)).snapshot()


def _folded(updates: list[bytes], state: bytes | None = None) -> bytes:
    state = Doc().get_update() if state is None else state
    for update in updates:
        state = fold_document(state, [DocUpdate(0, "u", 0, update)], FIELD, attribute=False).state
    return state


def _past_a_gap() -> tuple[list[bytes], str]:
    """One client's updates, the second missing: a paragraph made after the gap, typed into."""
    author: Doc[Any] = Doc(client_id=1)
    body = author.get(FIELD, type=XmlFragment)
    updates: list[bytes] = []
    author.observe(lambda event: updates.append(event.update))
    body.children.append(XmlElement("paragraph", None, [XmlText("hello")]))
    first = body.children[0].children[0]
    assert isinstance(first, XmlText)
    first.insert(5, " world")  # never logged
    second = body.children.append(XmlElement("paragraph", None, [XmlText("there")]))
    text = second.children[0]
    assert isinstance(text, XmlText)
    text.insert(0, "over ")
    text.insert(10, "!")
    return [updates[0], *updates[2:]], "hello\nover there!"


def test_edits_inside_a_block_made_past_a_gap_are_rendered() -> None:
    updates, want = _past_a_gap()
    doc = LetterDocument(FIELD)
    for i, update in enumerate(updates):
        doc.apply(update)
        assert doc.snapshot() == _fresh(updates[: i + 1])
    assert doc.snapshot().content == want


def test_an_emptied_text_body_renders_as_a_fresh_one() -> None:
    writer: Doc[Any] = Doc()
    body = writer.get(FIELD, type=Text)
    updates: list[bytes] = []
    writer.observe(lambda event: updates.append(event.update))
    body.insert(0, "Dear Sir")
    del body[0:8]
    doc = LetterDocument(FIELD)
    for update in updates:
        doc.apply(update)
    assert doc.snapshot() == _fresh(updates) == LetterDocument(FIELD).snapshot()


def test_snapshots_equal_fresh_renders_when_an_update_is_skipped_or_late() -> None:
    stale = 0
    for seed in range(16):
        log = late_coedits(seed)
        rng = random.Random(seed)
        gone = rng.randrange(len(log) // 2)
        rest = log[:gone] + log[gone + 1 :]
        late = rng.randrange(gone, len(rest) + 1)
        for order in (rest, [*rest[:late], log[gone], *rest[late:]]):
            doc, state = LetterDocument(FIELD), None
            for update in order:
                doc.apply(update)
                state = _folded([update], state)
                stale += doc.snapshot() != LetterDocument(FIELD, state).snapshot()
    assert stale == 0


async def test_a_version_after_a_missing_update_holds_what_the_log_holds(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], make_settings: Any, db: str
) -> None:
    """The snapshotter's latest version holds the document, and verify (replaying the log)
    agrees with every version."""
    letter = "L-gap"
    updates, want = _past_a_gap()
    s = LetterScript(letter)
    edits = [new_event(letter, u, firm=s.firm, user="alice", type="doc.update") for u in updates]
    # A version before the edits inside the block past the gap: the one after re-renders
    # only what changed since.
    saves = [s.save("alice", "before"), s.save("alice", "after")]
    await append(elog, LETTERS, [s.created(), *edits[:2], saves[0], *edits[2:], saves[1]])
    await drain(snap_factory(), elog)
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        content = await pool.fetchval(
            "SELECT content FROM letter_version WHERE letter_id = $1 ORDER BY version_number"
            " DESC LIMIT 1",
            letter,
        )
        findings = await verify.verify_letter(Sources(make_settings(), elog, pg=pool), letter)
    finally:
        await pool.close()
    assert content == want
    assert [f.what for f in findings if not f.ok] == []
