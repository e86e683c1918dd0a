"""The fold's save bookkeeping without services: which cached letters are due for a save by
age (found without scanning the cache), and the save-tracking fields of a letter's state."""

import json
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from schemas.envelope import new_event
from schemas.settings import Settings
from snapshotter.fold import Folder, SavePolicy
from snapshotter.quarantine import PoisonRecord
from snapshotter.state import LetterState
from tests.attacks.panics import panicking_update
from tests.snapshotter.conftest import LETTERS
from tests.snapshotter.folding import Log, restored
from tests.snapshotter.scripts import LetterScript

RARELY = SavePolicy(records=10_000, size=1 << 30)  # saves at creation and versions only


class CountedLetters(OrderedDict[str, LetterState]):
    """The folder's cache, counting the scans of it."""

    scans = 0

    def __iter__(self) -> Iterator[str]:
        self.scans += 1
        return super().__iter__()

    def values(self) -> Any:
        self.scans += 1
        return super().values()

    def items(self) -> Any:
        self.scans += 1
        return super().items()


def edited(folder: Folder, log: Log, scripts: Sequence[LetterScript], partition: int = 0) -> None:
    folder.fold(log.records([s.type_text("alice", 0, 0, "x") for s in scripts], partition))


def test_stale_finds_the_due_letters_in_order_without_scanning_the_cache() -> None:
    folder, log = Folder(Settings(), saving=RARELY), Log()
    scripts = [LetterScript(f"L-{i}") for i in range(300)]
    other = LetterScript("L-other")  # partition 1
    folder.fold(log.records([e for s in scripts for e in (s.created(), s.paragraph("a", "p"))]))
    folder.fold(log.records([other.created(), other.paragraph("b", "q")], partition=1))
    for partition in (0, 1):  # all saved, as by an orderly stop
        folder.unsaved(partition, log.ends[partition])
    edited(folder, log, scripts[:3])
    edited(folder, log, [other], partition=1)
    cutoff = time.monotonic()
    edited(folder, log, scripts[3:])
    cached = CountedLetters(folder.letters)
    folder.letters = cached

    rows = folder.stale(0, cutoff)
    assert [row.letter_id for row in rows] == ["L-0", "L-1", "L-2"]
    assert cached.scans == 0
    assert [json.loads(row.state_json)["covers"] for row in rows] == [601, 602, 603]
    assert folder.stale(0, cutoff) == []  # saved: no longer due
    # Folded again, L-0 is due after the others (unsaved since later).
    edited(folder, log, scripts[:1])
    due = [row.letter_id for row in folder.stale(0, time.monotonic())]
    assert due == [s.letter_id for s in scripts[3:]] + ["L-0"]
    assert [row.letter_id for row in folder.stale(1, time.monotonic())] == ["L-other"]
    assert cached.scans == 0


def test_letters_saved_or_dropped_otherwise_leave_the_due_order() -> None:
    folder, log = Folder(Settings(), max_cached=1, saving=RARELY), Log()
    a, b = LetterScript("L-a"), LetterScript("L-b")
    folder.fold(log.records([a.created(), a.paragraph("a", "one"), b.created()]))
    folder.fold(log.records([b.paragraph("b", "two")]))
    edited(folder, log, [b])
    assert [row.letter_id for row in folder.evict(0)] == ["L-a"]  # saved with the commit
    assert folder.unsaved(0, log.ends[0]) != []  # b, by the orderly stop
    assert folder.stale(0, time.monotonic()) == []
    edited(folder, log, [b])
    folder.forget()  # a failed commit: nothing cached is due any more
    assert folder.stale(0, time.monotonic()) == []


def test_a_failed_catch_up_leaves_no_letter_due() -> None:
    first, log = Folder(Settings(), saving=RARELY), Log()
    s = LetterScript("L-poisoned")
    first.fold(log.records([s.created()]))
    row = first.save(first.letters[s.letter_id])
    more = log.records([s.paragraph("a", "fine")])
    update = panicking_update(s.doc.client_id, 0)
    poison = log.records([new_event(s.letter_id, update, firm=s.firm, user="m", type="doc.update")])
    loaded = restored(first, row, unsaved_from=1)
    second = Folder(Settings(), saving=RARELY)
    with pytest.raises(PoisonRecord):
        second.catch_up([loaded], [*more, *poison])
    assert s.letter_id not in second.letters
    assert second.stale(0, time.monotonic()) == []


def test_caught_up_letters_are_saved_with_the_next_batch_even_if_not_in_it() -> None:
    first, log = Folder(Settings(), saving=RARELY), Log()
    s, t = LetterScript("L-s"), LetterScript("L-t")
    first.fold(log.records([s.created()]))
    row = first.save(first.letters[s.letter_id])
    behind = log.records([s.paragraph("a", "one"), s.paragraph("a", "two")])
    loaded = restored(first, row, unsaved_from=1)
    second = Folder(Settings(), saving=RARELY)
    second.catch_up([loaded], behind)
    out = second.fold(log.records([t.created()]))
    saved = {r.letter_id: json.loads(r.state_json) for r in out.states}
    assert saved[s.letter_id]["covers"] == 3
    assert saved[s.letter_id]["unsaved"] == [2, sum(len(r.value) for r in behind)]
    assert s.letter_id in out.current and s.letter_id not in out.lagging


def test_state_bookkeeping_fields_follow_folds_and_saves() -> None:
    folder, log = Folder(Settings(), saving=RARELY), Log()
    s = LetterScript("L-fields")
    folder.fold(log.records([s.created()]))
    state = folder.letters[s.letter_id]
    assert (state.covers, state.saved_covers, state.unsaved_from) == (1, 1, None)
    assert (state.unsaved_records, state.unsaved_bytes, state.unsaved_since) == (0, 0, None)
    records = log.records([s.paragraph("a", "one"), s.paragraph("a", "two")])
    folder.fold(records)
    assert (state.covers, state.saved_covers, state.unsaved_from) == (3, 1, 1)
    assert state.unsaved_records == 2 and state.unsaved_bytes == sum(len(r.value) for r in records)
    since = state.unsaved_since
    assert state.unsaved and since is not None
    folder.save(state)  # by age, eviction or a stop: the policy's counts go on
    assert not state.unsaved and state.unsaved_records == 2
    assert (state.saved_covers, state.unsaved_from) == (3, None)
    assert state.unsaved_since is None
    folder.fold(log.records([s.save("a", "named")]))  # a version: a scheduled save
    assert (state.saved_covers, state.unsaved_records, state.unsaved_bytes) == (4, 0, 0)


def test_older_rows_still_load() -> None:
    folder, log = Folder(Settings(), saving=RARELY), Log()
    s = LetterScript("L-old")
    folder.fold(log.records([s.created(), s.paragraph("a", "one")]))
    state = folder.letters[s.letter_id]
    data = state.to_json()
    again = LetterState.restore(
        s.letter_id, LETTERS, 0, state.doc.state(), data, field_name="default", window_ms=1
    )
    assert again.to_json() == data and again.saved_covers == 2 and again.unsaved_from is None
    del data["covers"], data["unsaved"]  # saved before either existed
    legacy = LetterState.restore(
        s.letter_id,
        LETTERS,
        0,
        state.doc.state(),
        data,
        field_name="default",
        window_ms=1,
        committed=9,
    )
    assert (legacy.covers, legacy.saved_covers, legacy.unsaved) == (9, None, True)
    assert (legacy.unsaved_records, legacy.unsaved_bytes) == (0, 0)
    assert legacy.doc.snapshot().content == "one"


def test_eviction_walks_past_unsaved_letters_of_other_partitions() -> None:
    folder, log = Folder(Settings(), max_cached=2, saving=RARELY), Log()
    others = [LetterScript(f"L-other-{i}") for i in range(2)]  # partition 1, least recent
    folder.fold(log.records([e for s in others for e in (s.created(), s.paragraph("b", "q"))], 1))
    saved = [LetterScript(f"L-saved-{i}") for i in range(3)]  # saved at their creation
    folder.fold(log.records([s.created() for s in saved]))
    assert folder.evict(0) == []  # nothing of partition 0 to save
    # Partition 1's letters wait for its commit; the saved ones further down made room.
    assert list(folder.letters) == ["L-other-0", "L-other-1"]
    rows = folder.evict(1)
    assert rows == [] and len(folder.letters) == 2  # at the limit: nothing to evict
    folder.fold(log.records([LetterScript("L-new").created()]))
    assert [row.letter_id for row in folder.evict(1)] == ["L-other-0"]  # saved with 1's commit
    assert list(folder.letters) == ["L-other-1", "L-new"]


def test_eviction_saves_unsaved_letters_of_other_partitions_when_nothing_else_makes_room() -> None:
    folder, log = Folder(Settings(), max_cached=2, saving=RARELY), Log()
    quiet = [LetterScript(f"L-quiet-{i}") for i in range(3)]  # partition 1, then no more
    folder.fold(log.records([e for s in quiet for e in (s.created(), s.paragraph("b", "q"))], 1))
    assert [row.letter_id for row in folder.evict(1)] == ["L-quiet-0"]  # with 1's commit
    busy = [LetterScript(f"L-busy-{i}") for i in range(2)]
    out = folder.fold(log.records([s.created() for s in busy]))
    # Only partition 1's unsaved letters can make room: their rows come back (for a commit of
    # partition 1 at its position), the least recently used first, and the bound holds.
    rows = folder.evict(0, keep=out.dirty)
    assert [(row.letter_id, row.partition) for row in rows] == [("L-quiet-1", 1), ("L-quiet-2", 1)]
    assert [json.loads(row.state_json)["covers"] for row in rows] == [4, 6]
    assert list(folder.letters) == ["L-busy-0", "L-busy-1"]
    assert folder.stale(1, time.monotonic()) == []  # saved: no longer due
