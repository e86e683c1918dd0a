"""A forged pending part never costs a good one. alice's 'Dear Sir'; bob adds 'X', carol 'C'
after it; a forged struct sits inside carol's 'C'. Logged hello, carol, forged, bob: carol's
part and the forged one each apply with bob's update alone, not together, and both were dropped
('Dear SirX'). And a state's pending parts are split per client, though none starts at clock 0
(they came out as one part)."""

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from pycrdt import Doc

from eventlog.embedded import EmbeddedLog
from projector.document import DocUpdate, fold_document
from schemas.ystate import split_pending, with_pending
from snapshotter.consumer import Snapshotter
from snapshotter.document import LetterDocument
from tests.snapshotter.forged import FIELD, forged, saved_version, typed, typing


def _edits() -> tuple[bytes, bytes, bytes]:
    """hello, bob's 'X', carol's 'C' after it."""
    hello, _ = typed(0)
    (bob,) = typing(2, [hello], "X")
    (carol,) = typing(3, [hello, bob], "C")
    return hello, bob, carol


def test_each_client_waiting_past_clock_0_is_a_part_that_applies_alone() -> None:
    hello, _ = typed(0)
    bob, carol = typing(2, [hello], "X", "Y"), typing(3, [hello], "U", "V")
    doc: Doc[Any] = Doc()
    for update in (hello, bob[1], carol[1]):  # each waits on its client's clock 0
        doc.apply_update(update)
    integrated, parts = split_pending(with_pending(doc.get_update(), [bob[1], carol[1]]))
    assert LetterDocument(FIELD, integrated).snapshot().content == "Dear Sir"
    assert sorted(parts) == sorted([bob[1], carol[1]])  # one per client, no delete set
    for part in parts:
        Doc().apply_update(part)


def test_a_part_that_fails_only_with_a_good_one_is_dropped_alone() -> None:
    hello, bob, carol = _edits()
    for order in ([carol, forged(3, 0)], [forged(3, 0), carol]):
        doc = LetterDocument(FIELD)
        for update in (hello, *order, bob):
            doc.apply(update)
        assert (doc.snapshot().content, doc.dropped) == ("Dear SirXC", 1)


def test_the_projector_keeps_the_good_part_wherever_batches_end() -> None:
    hello, bob, carol = _edits()
    updates = [hello, carol, forged(3, 0), bob]
    for cuts in ([1, 2, 3], [1, 3], [1], [2], [3], []):  # batch boundaries
        state, start = Doc().get_update(), 0
        for end in [*cuts, len(updates)]:
            batch = [DocUpdate(i, "u", 0, updates[i]) for i in range(start, end)]
            state = fold_document(state, batch, FIELD).state
            start = end
        assert LetterDocument(FIELD, state).snapshot().content == "Dear SirXC", cuts


def test_a_forged_record_costs_nothing_in_any_log_order() -> None:
    """Four good edits (bob's two, carol's after bob's first, dan's) and a forged record inside
    one of three of them, in every log order (360): the snapshotter, the projector in one batch
    and one update per batch all show what the good edits alone show (220 differed)."""
    hello, _ = typed(0)
    bob = typing(2, [hello], "X", "Y")
    good = [*bob, *typing(3, [hello, bob[0]], "C"), *typing(4, [hello], "D")]
    start = fold_document(Doc().get_update(), [DocUpdate(0, "a", 0, hello)], FIELD).state

    def projected(order: list[bytes], cuts: list[int]) -> str:
        state, begin = start, 0
        for end in [*cuts, len(order)]:
            batch = [DocUpdate(1 + i, "u", 0, order[i]) for i in range(begin, end)]
            state, begin = fold_document(state, batch, FIELD).state, end
        return LetterDocument(FIELD, state).snapshot().content

    def shown(order: list[bytes]) -> str:
        doc = LetterDocument(FIELD, start)
        for update in order:
            with contextlib.suppress(ValueError):  # refused alone: skipped
                doc.apply(update)
        return doc.snapshot().content

    for bad in (forged(3, 0), forged(2, 0), forged(2, 1)):
        for order in map(list, itertools.permutations([*good, bad])):
            want = shown([u for u in order if u is not bad])
            got = {shown(order), projected(order, []), projected(order, list(range(1, 5)))}
            assert got == {want}, (bad, [good.index(u) if u in good else "F" for u in order])


async def test_good_pending_part_kept(
    elog: EmbeddedLog, snap_factory: Callable[..., Snapshotter], db: str
) -> None:
    hello, b1, c1 = _edits()
    edits = [(hello, "alice"), (c1, "carol"), (forged(3, 0), "mallory"), (b1, "bob")]
    snapshotter = snap_factory()
    content = await saved_version(elog, snapshotter, db, "L-rr", edits)
    assert content == "Dear SirXC"  # carol's 'C' is a good edit
    assert snapshotter.folder.stats["dropped_pending"] == 1
