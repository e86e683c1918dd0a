"""A record pycrdt decodes but yrs cannot integrate (past the gateway: a restored log,
corruption) is skipped as one it cannot decode is, and never stops the letter: alone, it is
refused with the document as before; pending (its parent not there yet), it is dropped once it
makes an update fail, where it used to fail that update (then quarantined, the letter's later
updates pending for good) or, merged behind the pending parts (RR1), every later one."""

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from eventlog.embedded import EmbeddedLog
from schemas.envelope import new_event
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.forged import AUTHOR, FIELD, forged, half_applied, typed
from tests.snapshotter.scripts import LetterScript, append, drain
from tools import verify
from tools.sources import Sources

WANT = "Dear Sir" + "ab" * 28


def test_a_pending_part_that_cannot_apply_fails_no_later_update() -> None:
    hello, later = typed()
    doc = LetterDocument(FIELD)
    doc.apply(hello)
    doc.apply(forged(AUTHOR, 20))  # inside the 'a' at clock 20, the 6th update's: pending
    inserted = []
    for update in later:  # RR1: 23 of these failed (28 of 28 in its history); before, one
        inserted.append(doc.apply(update).inserted)
        assert doc.snapshot() == LetterDocument(FIELD, doc.state()).snapshot()
    assert (doc.snapshot().content, inserted) == (WANT, [2] * 28)


def test_an_update_yrs_cannot_integrate_is_refused_and_changes_nothing() -> None:
    hello, later = typed(2)
    doc = LetterDocument(FIELD)
    doc.apply(hello)
    before = doc.snapshot()
    with pytest.raises(ValueError, match="block parent"):  # was yrs' RuntimeError
        doc.apply(forged(AUTHOR, 3))  # inside the 'e' of 'Dear'
    assert doc.snapshot() == before
    for update in later:
        doc.apply(update)
    assert doc.snapshot().content == "Dear Sirabab"


def test_an_update_refused_half_applied_is_not_a_refusal_to_skip() -> None:
    """The document changed before yrs refused the rest: not to be trusted, so not a
    ValueError (skipped) but raised on (the snapshotter folds again from its saved state and
    quarantines the record, tests/attacks/test_quarantine.py)."""
    hello, _ = typed(0)
    doc = LetterDocument(FIELD)
    doc.apply(hello)
    with pytest.raises(RuntimeError, match="block parent") as raised:
        doc.apply(half_applied())
    assert not isinstance(raised.value, ValueError)


async def test_versions_go_on_past_a_record_yrs_cannot_integrate(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], make_settings: Any, db: str
) -> None:
    """Both kinds through the snapshotter: skipped (bad_update) and dropped, nothing
    quarantined, every version holding what the log holds (verify replays it)."""
    letter = "L-forged"
    hello, later = typed()
    s = LetterScript(letter)

    def update(data: bytes, user: str = "alice") -> Any:
        return new_event(letter, data, firm=s.firm, user=user, type="doc.update")

    bad = [update(forged(AUTHOR, 3), "mallory"), update(forged(AUTHOR, 20), "mallory")]
    edits = [update(u) for u in later]
    events = [s.created(), update(hello), *bad, *edits[:3], s.save("alice", "gap")]
    events += [*edits[3:10], s.save("alice", "on"), *edits[10:], s.save("alice", "all")]
    await append(elog, LETTERS, events)
    snapshotter = snap_factory()
    await drain(snapshotter, elog)
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        versions = await pool.fetch(
            "SELECT content FROM letter_version WHERE letter_id = $1 ORDER BY version_number",
            letter,
        )
        quarantined = await pool.fetchval("SELECT count(*) FROM quarantine")
        findings = await verify.verify_letter(Sources(make_settings(), elog, pg=pool), letter)
    finally:
        await pool.close()
    assert [v["content"] for v in versions] == [
        "Dear Sir" + "ab" * 3,
        "Dear Sir" + "ab" * 10,
        WANT,
    ]
    stats = snapshotter.folder.stats
    assert (quarantined, stats["bad_update"], stats["dropped_pending"]) == (0, 1, 1)
    assert [f.what for f in findings if not f.ok] == []
