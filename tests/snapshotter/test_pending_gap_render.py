"""While an update waits on a missing earlier one (pending), yrs still integrates a later update
of the same client whose neighbours it knows, though its clocks follow the pending one: applied
one by one, the document shows it (and can lose the pending one for good when the missing
update arrives), while the state saved (`state()`, carrying the pending parts) loads without
it. A version must not depend on where a restart fell, so a live document renders what its
saved state loads as: an update past a pending one of its client is not visible yet."""

import contextlib
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from eventlog.embedded import EmbeddedLog
from schemas.envelope import new_event
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.coediting import FIELD, late_coedits
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.forged import forged
from tests.snapshotter.scripts import LetterScript, append
from tools import verify
from tools.sources import Sources


def _dear_sir() -> tuple[bytes, bytes, bytes, bytes]:
    """'Dear Sir' by one author; then another's ',' (u1), ' we write' after it (u2, depends on
    u1) and 'Re: ' before 'Dear' (u3: its neighbours known, its clocks after u2's)."""
    author: Doc[Any] = Doc(client_id=1)
    author.get(FIELD, type=XmlFragment).children.append(
        XmlElement("paragraph", None, [XmlText("Dear Sir")])
    )
    hello = author.get_update()
    editor: Doc[Any] = Doc(client_id=2)
    editor.apply_update(hello)
    text = editor.get(FIELD, type=XmlFragment).children[0].children[0]
    assert isinstance(text, XmlText)
    out = []
    for at, words in ((8, ","), (9, " we write"), (0, "Re: ")):
        before = editor.get_state()
        text.insert(at, words)
        out.append(editor.get_update(before))
    return hello, out[0], out[1], out[2]


def _reloaded(doc: LetterDocument) -> str:
    return LetterDocument(FIELD, doc.state()).snapshot().content


def test_an_update_past_a_pending_one_renders_as_its_saved_state_loads() -> None:
    hello, comma, write, re = _dear_sir()
    doc = LetterDocument(FIELD)
    seen = []
    for update in (hello, write, re, comma):  # the comma, which ' we write' follows, last
        inserted = doc.apply(update).inserted
        seen.append((doc.snapshot().content, _reloaded(doc), inserted))
    # (stock Yjs shows the same texts: tests/interop's yjs, applied one by one)
    assert seen == [
        ("Dear Sir", "Dear Sir", 8),
        ("Dear Sir", "Dear Sir", 0),  # ' we write' pending on the comma
        ("Dear Sir", "Dear Sir", 0),  # 'Re: ' follows it: pending too, counted when shown
        ("Re: Dear Sir, we write", "Re: Dear Sir, we write", 14),
    ]


def _late(log: list[bytes], rng: random.Random) -> list[bytes]:
    """`log` with two updates moved later (another producer, a restored log)."""
    order = log[:]
    for _ in range(2):
        i = rng.randrange(len(order))
        order.insert(rng.randrange(i, len(order)), order.pop(i))
    return order


def _in_order(log: list[bytes]) -> str:
    doc: Doc[Any] = Doc()
    for update in log:
        doc.apply_update(update)
    return LetterDocument(FIELD, doc.get_update()).snapshot().content


def test_a_restart_anywhere_renders_what_the_uninterrupted_document_does() -> None:
    """Per step: the live rendering equals its saved state's; a document restarted from any
    step's state renders every later step as the live one does; all in, the log's text."""
    differ = []
    for seed in range(24):
        log = late_coedits(seed)
        rng = random.Random(seed)
        order = _late(log, rng)
        live = LetterDocument(FIELD)
        states, rendered = [], []
        for i, update in enumerate(order):
            live.apply(update)
            states.append(live.state())
            rendered.append(live.snapshot())
            if rendered[-1].content != _reloaded(live):
                differ.append((seed, i, "reloaded"))
        restart = rng.randrange(len(order) - 1)
        again = LetterDocument(FIELD, states[restart])
        for i in range(restart + 1, len(order)):
            again.apply(order[i])
            if again.snapshot() != rendered[i]:
                differ.append((seed, i, f"restarted at {restart}"))
        if rendered[-1].content != _in_order(log):
            differ.append((seed, len(order), "all in"))
    assert differ == []


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 1 << 16),
    moves=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), min_size=1, max_size=3),
    dropped=st.none() | st.integers(0, 39),
    bad=st.none() | st.tuples(st.integers(1, 3), st.integers(0, 60), st.integers(0, 40)),
    restart=st.integers(0, 40),
)
def test_live_renders_what_its_saved_state_loads_in_random_histories(
    seed: int,
    moves: list[tuple[int, int]],
    dropped: int | None,
    bad: tuple[int, int, int] | None,
    restart: int,
) -> None:
    """Updates late, one missing (quarantined), a record yrs cannot integrate (inside a
    co-editor's item, maybe not there yet): at every step the live document renders what its
    saved state loads as, and a document restarted from that state renders the rest alike."""
    order = late_coedits(seed)
    if dropped is not None:
        del order[dropped]
    for i, to in moves:
        i = i % len(order)
        order.insert(max(i, to % len(order)), order.pop(i))
    if bad is not None:
        order.insert(bad[2] % (len(order) + 1), forged(bad[0], bad[1]))
    live, rendered, states = LetterDocument(FIELD), [], []
    for update in order:
        try:
            live.apply(update)
        except ValueError:
            assert bad is not None and update == forged(bad[0], bad[1])
        rendered.append(live.snapshot())
        states.append(live.state())
        assert rendered[-1] == LetterDocument(FIELD, states[-1]).snapshot()
    restart %= len(order)
    again = LetterDocument(FIELD, states[restart])
    for i in range(restart + 1, len(order)):
        with contextlib.suppress(ValueError):
            again.apply(order[i])
        assert again.snapshot() == rendered[i]


async def test_versions_across_a_restart_in_the_gap_hold_what_the_log_holds(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], make_settings: Any, db: str
) -> None:
    """A version saved while 'Re: ' waits, a restart from the state saved then, a version once
    the comma came: each holds what the log holds there, and verify (a replay) agrees."""
    letter = "L-gap-restart"
    hello, comma, write, re = _dear_sir()
    s = LetterScript(letter)
    edit = [
        new_event(letter, u, firm=s.firm, user="bob", type="doc.update")
        for u in (hello, write, re, comma)
    ]
    events = [s.created(), *edit[:3], s.save("bob", "gap"), edit[3], s.save("bob", "all in")]
    await append(elog, LETTERS, events)
    first = snap_factory()
    await first.resume()
    partition = elog.partition_for(LETTERS, letter.encode())
    records = await elog.read(LETTERS, partition, 0, 100)
    await first.handle(records[:5])  # up to the version in the gap
    await first.flush()
    restarted = snap_factory()  # loads the letter's state from PostgreSQL
    await restarted.resume()
    await restarted.handle(records[5:])
    await restarted.flush()
    pool = await asyncpg.create_pool(db, min_size=1, max_size=2)
    try:
        versions = await pool.fetch(
            "SELECT content FROM letter_version WHERE letter_id = $1 ORDER BY version_number",
            letter,
        )
        findings = await verify.verify_letter(Sources(make_settings(), elog, pg=pool), letter)
    finally:
        await pool.close()
    assert [v["content"] for v in versions] == ["Dear Sir", "Re: Dear Sir, we write"]
    assert [f.what for f in findings if not f.ok] == []
