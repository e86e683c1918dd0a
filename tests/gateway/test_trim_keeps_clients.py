"""Trimming an update to what the letter lacks (Room.new_part: `still_adds`) never changes the
Yjs client ids it writes under first (`new_clients`), so the room and REST writes reuse the list
computed before the trim: structs go only at clocks the document has (its state vector, never
past the shape's known clocks, which count what it holds pending too), and a block that stays
keeps its end clock, which alone puts its id in the list."""

from typing import Any

import pytest
from pycrdt import Doc, Text, merge_updates

from gateway.live.ownership import new_clients
from gateway.live.resyncs import still_adds
from gateway.preparse import DocShape, Limits, check_update


def typed(client: int, *chunks: str) -> list[bytes]:
    """The updates client `client` made typing `chunks`, one each."""
    doc: Doc[Any] = Doc(client_id=client)
    text, updates = doc.get("text", type=Text), []
    for chunk in chunks:
        before = doc.get_state()
        text.insert(len(text), chunk)
        updates.append(doc.get_update(before))
    return updates


A1, A2 = typed(1, "hello", "abc")
(B1,) = typed(2, "new")
C1, C2, C3 = typed(3, "xyz", "pq", "rst")


@pytest.mark.parametrize(
    ("update", "written"),
    [
        (merge_updates(A1, A2, B1), [1, 2]),  # a struct it has in part, cut: 1 stays
        (merge_updates(A1, B1), [2]),  # all of 1's structs repeated: 1 goes, was never listed
        (merge_updates(C1, C2, C3, B1), [2]),  # 3 past its state vector (C3 pending): kept
    ],
)
def test_a_trimmed_update_writes_under_the_same_new_ids(update: bytes, written: list[int]) -> None:
    state = merge_updates(A1, C1, C3)  # 3's clocks 3..5 missing: C3 held pending
    letter: Doc[Any] = Doc()
    letter.apply_update(state)
    shape, limits = DocShape.from_update(state), Limits()
    info = check_update(update, limits, shape, strip_pending=True)
    trimmed = still_adds(letter, update, shape.has_deleted)
    assert trimmed is not None and trimmed != update
    after = check_update(trimmed, limits, shape)
    assert sorted(new_clients(info, shape)) == sorted(new_clients(after, shape)) == written
