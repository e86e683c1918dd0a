"""Letters' working states are saved now and then, not with every batch: a restart between two
saves folds the letter's records since its saved state again without writing their rows twice,
and ends with the rows and the state of an uninterrupted run."""

import asyncio
import json
from collections.abc import Callable, Sequence

import asyncpg
import pytest

from eventlog.embedded import EmbeddedLog
from schemas.envelope import Event, new_event
from schemas.settings import Settings
from snapshotter.consumer import Snapshotter
from snapshotter.service import Owner
from snapshotter.state import LetterState
from snapshotter.store import StalePositionError, Store
from tests.attacks.panics import panicking_update
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.saved_states import RARELY, committed, feed, state_rows
from tests.snapshotter.scripts import Clock, LetterScript, append
from tests.snapshotter.table_dump import dump
from tests.support import eventually


def same_state(got: LetterState, want: LetterState) -> None:
    assert got.to_json() == want.to_json()
    assert got.doc.snapshot() == want.doc.snapshot()
    assert got.doc._doc.get_state() == want.doc._doc.get_state()


def phase_one(a: LetterScript, b: LetterScript) -> list[Event]:
    """Two letters, sessions still open, bursts open, several batches after creation."""
    events = [a.created(), b.created(), a.joined("alice", "a1"), a.joined("bob", "a2")]
    events += [b.joined("carol", "b1"), a.paragraph("alice", "Dear Sir,")]
    for i in range(12):
        events.append(a.type_text("alice" if i % 3 else "bob", 0, 9, f" w{i}"))
        events.append(b.paragraph("carol", f"line {i}"))
    return events


def phase_two(a: LetterScript, b: LetterScript) -> list[Event]:
    events = [a.type_text("bob", 0, 0, ">"), a.left("alice", "a1"), a.type_text("bob", 0, 1, "!")]
    events += [a.left("bob", "a2"), b.left("carol", "b1"), a.save("alice", "final")]
    return events


async def test_restart_between_state_saves_gives_the_rows_and_state_of_an_uninterrupted_run(
    elog: EmbeddedLog,
    make_settings: Callable[..., Settings],
    store: Store,
    db: str,
    reference_db: str,
    clock: Clock,
) -> None:
    a, b = LetterScript("L-restart-a"), LetterScript("L-restart-b")
    settings = make_settings(snapshotter_batch=3, **RARELY)
    first = phase_one(a, b)
    for event in first:
        clock.advance(0.7)  # within the audit window: bursts stay open across the restart
        await append(elog, LETTERS, [event])
    before = Snapshotter(settings, elog, store)
    await feed(before, elog, limit=3)
    # The saved states are those of the letters' creation, many batches behind the position.
    saved = await state_rows(db)
    positions = await committed(store)
    for letter in (a, b):
        covers = saved[letter.letter_id][1]["covers"]
        partition = elog.partition_for(LETTERS, letter.letter_id.encode())
        assert covers < positions[partition] - 6
        assert before.folder.letters[letter.letter_id].covers > covers
    # Killed here (no orderly stop); a new instance starts from the stored positions.
    after = Snapshotter(settings, elog, store)
    second = phase_two(a, b)
    for event in second:
        clock.advance(0.7)
        await append(elog, LETTERS, [event])
    await feed(after, elog, limit=3)

    reference_store = await Store.open(reference_db)
    try:
        ref_settings = settings.model_copy(update={"database_url": reference_db})
        reference = Snapshotter(ref_settings, elog, reference_store)
        await feed(reference, elog, limit=1000)
        got, want = await dump(db), await dump(reference_db)
        assert got == want
        kinds = [row[3] for row in got["collaboration"] if row[1] == a.letter_id]
        assert kinds.count("session-end") == 2 and kinds.count("edit") >= 2
        versions = [row for row in got["letter_version"] if row[0] == a.letter_id]
        assert [json.loads(str(v[8]))["type"] for v in versions] == ["session-end", "named"]
        for letter in (a, b):
            same_state(
                after.folder.letters[letter.letter_id], reference.folder.letters[letter.letter_id]
            )
        # An orderly stop saves both states as far as they go: equal rows in both databases.
        await after.checkpoint()
        await reference.checkpoint()
        got, want = await dump(db), await dump(reference_db)
        assert got == want
        saved = await state_rows(db)
        for letter in (a, b):
            covers = after.folder.letters[letter.letter_id].covers
            assert saved[letter.letter_id][1]["covers"] == covers
    finally:
        await reference_store.close()


async def test_small_batches_on_a_large_letter_save_its_state_every_n_records(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-large")
    for i in range(1500):  # ~100 KB of text in one update: a state worth not rewriting
        s.paragraph("alice", f"Paragraph {i}: the insured party sustained damages as set out.")
    big = new_event(s.letter_id, s.doc.get_update(), firm=s.firm, user="alice", type="doc.update")
    settings = make_settings(**{**RARELY, "snapshotter_state_records": 10})
    await append(elog, LETTERS, [s.created(), big])
    snapshotter = Snapshotter(settings, elog, store)
    await feed(snapshotter, elog, limit=1000)
    xmin = (await state_rows(db))[s.letter_id][0]
    writes: list[int] = []
    covers: list[int] = []
    for i in range(40):  # one keystroke per batch
        await append(elog, LETTERS, [s.type_text("bob", i % 7, 0, "x")])
        await feed(snapshotter, elog, limit=1000)
        row_xmin, state = (await state_rows(db))[s.letter_id]
        if row_xmin != xmin:
            writes.append(i)
            covers.append(state.get("covers", -1))
        xmin = row_xmin
    # Saved with the creation; then the 10th record since (the large update is the first),
    # each time as far as the batch went.
    assert writes == [8, 18, 28, 38]
    assert covers == [i + 3 for i in writes]


async def test_a_state_saved_before_covers_existed_is_taken_as_current_and_saved_again(
    elog: EmbeddedLog,
    make_settings: Callable[..., Settings],
    store: Store,
    db: str,
    reference_db: str,
) -> None:
    s = LetterScript("L-legacy")
    events = [s.created(), s.joined("alice", "c1"), s.paragraph("alice", "one")]
    await append(elog, LETTERS, [*events, s.type_text("alice", 0, 3, " two")])
    # The previous snapshotter saved every letter it touched with every batch, and no covers.
    old = Snapshotter(make_settings(snapshotter_state_records=1), elog, store)
    await feed(old, elog, limit=2)
    conn = await asyncpg.connect(db)
    try:
        await conn.execute(
            "UPDATE snapshotter_letter_state SET state = state - 'covers' - 'unsaved'"
        )
    finally:
        await conn.close()
    await append(elog, LETTERS, [s.type_text("alice", 0, 0, ">")])
    new = Snapshotter(make_settings(**RARELY), elog, store)
    await feed(new, elog, limit=1)  # the first commit saves it
    state = (await state_rows(db))[s.letter_id][1]
    assert state["covers"] == new.folder.letters[s.letter_id].covers == 5
    await append(elog, LETTERS, [s.left("alice", "c1")])
    await feed(new, elog, limit=1)
    reference_store = await Store.open(reference_db)
    try:
        ref_settings = make_settings(database_url=reference_db, **RARELY)
        await feed(Snapshotter(ref_settings, elog, reference_store), elog, limit=1000)
        got, want = await dump(db), await dump(reference_db)
        for table in ("letters", "letter_version", "collaboration", "consumer_positions"):
            assert got[table] == want[table], table
    finally:
        await reference_store.close()


async def test_eviction_saves_the_letters_of_the_committing_partition(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    scripts = [LetterScript(f"L-evict-{i}") for i in range(12)]
    by_partition: dict[int, list[LetterScript]] = {}
    for script in scripts:
        by_partition.setdefault(elog.partition_for(LETTERS, script.letter_id.encode()), [])
        by_partition[elog.partition_for(LETTERS, script.letter_id.encode())].append(script)
    a, b = by_partition[0][:2]
    other = by_partition[1][0]
    snapshotter = Snapshotter(make_settings(**RARELY), elog, store)
    snapshotter.folder.max_cached = 2
    await append(elog, LETTERS, [other.created(), other.paragraph("dave", "elsewhere")])
    await append(elog, LETTERS, [a.created(), a.paragraph("alice", "A")])
    await feed(snapshotter, elog, limit=1000)
    assert (await state_rows(db))[a.letter_id][1]["covers"] == 1
    await append(elog, LETTERS, [b.created(), b.paragraph("bob", "B")])
    await feed(snapshotter, elog, limit=1000)
    # Partition 0 committed with more cached letters than fit: `a` (least recently used of
    # those its commit can save, its state ahead of its row) is saved with it; `other`
    # (partition 1, less recently used) is kept, as evicting `a` made room.
    assert set(snapshotter.folder.letters) == {b.letter_id, other.letter_id}
    rows = await state_rows(db)
    assert rows[a.letter_id][1]["covers"] == 2
    assert rows[other.letter_id][1]["covers"] == 1


async def test_a_quiet_partitions_letters_are_saved_to_keep_the_cache_bounded(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    """Letters of a partition that gets no more batches are saved (their partition's position
    left as it is) when the cache is over its bound, not kept until its next batch."""
    names = (f"L-bound-{i}" for i in range(100))
    scripts = [LetterScript(name) for name in names]
    quiet = [s for s in scripts if elog.partition_for(LETTERS, s.letter_id.encode()) == 1][:3]
    busy = [s for s in scripts if elog.partition_for(LETTERS, s.letter_id.encode()) == 0][:6]
    snapshotter = Snapshotter(make_settings(**RARELY), elog, store)
    snapshotter.folder.max_cached = 3
    await append(elog, LETTERS, [e for s in quiet for e in (s.created(), s.paragraph("q", "Q"))])
    await feed(snapshotter, elog, limit=1000)
    quiet_ids = {s.letter_id for s in quiet}
    assert await unsaved(db) == quiet_ids  # their paragraphs are not in their rows yet
    position = (await committed(store))[1]
    for group in (busy[:3], busy[3:]):
        await append(
            elog, LETTERS, [e for s in group for e in (s.created(), s.paragraph("b", "B"))]
        )
        await feed(snapshotter, elog, limit=1000)
        assert set(snapshotter.folder.letters) == {s.letter_id for s in group}
    assert not quiet_ids & await unsaved(db)
    assert (await committed(store))[1] == position
    states = await store.load_states(
        quiet_ids, field_name=snapshotter.folder.field, window_ms=snapshotter.folder.window_ms
    )
    assert {s.letter_id: (s.doc.snapshot().content, s.unsaved) for s in states} == {
        letter_id: ("Q", False) for letter_id in quiet_ids
    }


async def test_a_letter_unsaved_for_longer_than_the_limit_is_saved_with_its_partition(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-stale")
    settings = make_settings(**{**RARELY, "snapshotter_state_s": 1e-6})
    snapshotter = Snapshotter(settings, elog, store)
    await append(elog, LETTERS, [s.created(), s.paragraph("alice", "one")])
    await feed(snapshotter, elog, limit=1000)
    await append(elog, LETTERS, [s.type_text("alice", 0, 3, " two")])
    await feed(snapshotter, elog, limit=1000)
    partition = elog.partition_for(LETTERS, s.letter_id.encode())
    state = (await state_rows(db))[s.letter_id][1]
    assert state["covers"] == (await committed(store))[partition]


async def test_an_orderly_stop_saves_the_states_ahead_of_their_rows(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-stop")
    partition = elog.partition_for(LETTERS, s.letter_id.encode())
    await append(elog, LETTERS, [s.created(), s.paragraph("alice", "one")])
    await append(elog, LETTERS, [s.type_text("alice", 0, 3, " two")])
    owner = Owner(Snapshotter(make_settings(**RARELY), elog, store))
    await owner.assigned({LETTERS: frozenset({0, 1})})

    async def caught_up() -> bool:
        return (await committed(store)).get(partition) == 3

    await eventually(caught_up, timeout=30)
    assert (await state_rows(db))[s.letter_id][1]["covers"] == 1
    await owner.revoked({LETTERS: frozenset({0, 1})})
    assert (await state_rows(db))[s.letter_id][1]["covers"] == 3


async def test_catching_up_skips_the_records_quarantined_when_first_folded(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    s = LetterScript("L-poisoned")
    poison = new_event(
        s.letter_id,
        panicking_update(s.doc.client_id, 0),
        firm=s.firm,
        user="mallory",
        type="doc.update",
    )
    events: Sequence[Event] = [s.created(), s.paragraph("alice", "before"), poison]
    await append(elog, LETTERS, [*events, s.paragraph("alice", "after")])
    first = Snapshotter(make_settings(**RARELY), elog, store)
    partition = elog.partition_for(LETTERS, s.letter_id.encode())
    running = asyncio.create_task(first.run())
    try:
        await eventually(lambda: first.positions.get(partition) == 4, timeout=30)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert first.folder.stats["quarantined"] == 1
    assert (await state_rows(db))[s.letter_id][1]["covers"] == 1
    # Restarted: the letter's records since its creation are folded again, the poison skipped.
    await append(elog, LETTERS, [s.paragraph("alice", "later")])
    restarted = Snapshotter(make_settings(**RARELY), elog, store)
    await feed(restarted, elog, limit=1000)
    content = restarted.folder.letters[s.letter_id].doc.snapshot().content
    assert content == "before\nafter\nlater"


async def unsaved(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["letter_id"] for r in await conn.fetch("SELECT * FROM snapshotter_unsaved")}
    finally:
        await conn.close()


async def test_a_quiet_letter_far_behind_its_partition_loads_without_reading_the_log(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    """Only letters listed as lagging are folded again when loaded: a letter saved as far as
    its records go is current however many records of other letters follow it."""
    quiet = LetterScript("L-quiet")
    partition = elog.partition_for(LETTERS, quiet.letter_id.encode())
    busy = next(  # a letter of the same partition
        LetterScript(name)
        for name in (f"L-busy-{i}" for i in range(100))
        if elog.partition_for(LETTERS, name.encode()) == partition
    )
    snapshotter = Snapshotter(make_settings(**RARELY), elog, store)
    snapshotter.folder.max_cached = 1
    await append(elog, LETTERS, [quiet.created(), quiet.paragraph("alice", "one")])
    await feed(snapshotter, elog, limit=1000)
    assert await unsaved(db) == {quiet.letter_id}  # its paragraph is not in its row yet
    await snapshotter.checkpoint()  # saved as far as it goes
    assert await unsaved(db) == set()
    await append(elog, LETTERS, [busy.created()])
    for i in range(30):
        await append(elog, LETTERS, [busy.paragraph("bob", f"p{i}")])
    await feed(snapshotter, elog, limit=7)
    assert quiet.letter_id not in snapshotter.folder.letters  # evicted
    await append(elog, LETTERS, [quiet.type_text("alice", 0, 3, " two")])
    await feed(snapshotter, elog, limit=1000)
    assert snapshotter.folder.stats["catch-up read"] == 0
    assert snapshotter.folder.letters[quiet.letter_id].doc.snapshot().content == "one two"
    # A restart now finds the quiet letter lagging (its last record is not in its row) and
    # folds exactly its one record again.
    restarted = Snapshotter(make_settings(**RARELY), elog, store)
    await append(elog, LETTERS, [quiet.type_text("alice", 0, 7, "!")])
    await feed(restarted, elog, limit=1000)
    assert restarted.folder.stats["catch-up folded"] == 1
    assert restarted.folder.stats["catch-up read"] == 1
    assert restarted.folder.letters[quiet.letter_id].doc.snapshot().content == "one two!"


async def test_an_orderly_stop_saves_the_partitions_still_owned_when_one_was_taken(
    elog: EmbeddedLog, make_settings: Callable[..., Settings], store: Store, db: str
) -> None:
    """Another instance took one partition (its position moved on): the checkpoint still saves
    the letters of the others, then says which it could not."""
    scripts: dict[int, LetterScript] = {}
    for n in range(100):  # a letter in each of two partitions
        s = LetterScript(f"L-split-{n}")
        scripts.setdefault(elog.partition_for(LETTERS, s.letter_id.encode()), s)
        if len(scripts) == 2:
            break
    (taken, a), (kept, b) = sorted(scripts.items())
    for s in (a, b):
        await append(elog, LETTERS, [s.created(), s.paragraph("alice", "one")])
        await append(elog, LETTERS, [s.type_text("alice", 0, 3, " two")])
    first = Snapshotter(make_settings(**RARELY), elog, store)
    await feed(first, elog, limit=1000)
    assert (await state_rows(db))[b.letter_id][1]["covers"] == 1  # not saved since its creation
    # Another instance takes `taken` and commits a record there.
    await append(elog, LETTERS, [a.type_text("alice", 0, 7, " three")])
    second = Snapshotter(make_settings(**RARELY), elog, store)
    await second.resume([taken])
    while batch := await elog.read(LETTERS, taken, second.positions[taken], 1000):
        await second.handle(batch)
    await second.flush()

    with pytest.raises(StalePositionError, match=f"/{taken}"):
        await first.checkpoint()
    assert (await state_rows(db))[b.letter_id][1]["covers"] == (await committed(store))[kept]
