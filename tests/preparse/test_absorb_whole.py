"""`DocShape.absorb_whole` tells from a trusted update's shape alone (no look at the document)
whether it surely integrates whole: a gateway applies every update another instance logged,
and looking for pending parts in the document costs up to ~1 ms in a letter of thousands of
Yjs clients (gateway/live/room.py `apply_remote`). It may say no where the update integrates
(a look follows, no harm), never yes where it stays pending."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text, merge_updates

from gateway.wire.shape import DocShape
from schemas.ystate import pending_parts


def _history(steps: list[tuple[int, int, int, str]]) -> list[bytes]:
    """Updates of three co-editors, each made where its author's document stood (it had
    everything before): inserts at a position, deletions of a range."""
    docs: list[Doc[Any]] = [Doc() for _ in range(3)]
    updates: list[bytes] = []
    for who, at, length, word in steps:
        doc = docs[who]
        text = doc.get("text", type=Text)
        got: list[bytes] = []
        sub = doc.observe(lambda event, got=got: got.append(event.update))
        size = len(str(text))
        if word:
            text.insert(min(at, size), word)
        elif size:
            start = min(at, size - 1)
            del text[start : min(size, start + max(1, length))]
        doc.unobserve(sub)
        updates += got
        for other in docs:
            for update in got:
                other.apply_update(update)
    return updates


STEPS = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 30),
        st.integers(0, 6),
        st.sampled_from(["", "", "a", "bc", "def "]),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(
    steps=STEPS,
    order=st.randoms(use_true_random=False),
    merged=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=3),
)
def test_it_never_calls_whole_what_stays_pending(
    steps: list[Any], order: Any, merged: list[tuple[int, int]]
) -> None:
    updates = _history(steps)
    for i, j in merged:  # updates merged, holes between them held as Skips (re-read RR2)
        if i < len(updates) and j < len(updates) and i != j:
            updates[i] = merge_updates(updates[i], updates[j])
    order.shuffle(updates)  # a log out of order: some arrive before what they build on
    doc: Doc[Any] = Doc()
    shape = DocShape()
    for update in updates:
        whole = shape.absorb_whole(update)[1]
        doc.apply_update(update)
        if pending_parts(doc, [update]):
            assert not whole
            return  # past a pending update the shape holds it as if integrated: the room looks


def test_in_order_edits_are_whole_and_gaps_are_not() -> None:
    steps = [(0, 0, 0, "hello"), (1, 5, 0, " world"), (2, 3, 4, ""), (0, 0, 0, "a")]
    updates = _history(steps)
    shape = DocShape()
    assert all(shape.absorb_whole(update)[1] for update in updates)
    # "hello" missing: " world" follows it; " world" missing: the deletion reaches into it.
    for skipped in (0, 1):
        shape = DocShape()
        later = [shape.absorb_whole(u)[1] for i, u in enumerate(updates) if i != skipped]
        assert later[skipped] is False, skipped
    shape = DocShape()  # the deletion missing: nothing builds on one
    assert all(shape.absorb_whole(u)[1] for i, u in enumerate(updates) if i != 2)


def test_a_merge_holding_a_hole_is_not_whole() -> None:
    """One author's first and third updates merged (a Skip where the second goes): the third's
    structs wait for the second, though the block starts where the letter's clock is."""
    for kind in ("text", "map"):
        doc: Doc[Any] = Doc()
        got: list[bytes] = []
        doc.observe(lambda event, got=got: got.append(event.update))
        if kind == "text":
            text = doc.get("t", type=Text)
            text.insert(0, "ab")
            text.insert(1, "c")
            text.insert(0, "d")
        else:
            values = doc.get("m", type=Map)
            values["x"], values["y"], values["z"] = 1, 2, 3
        first, _second, third = got
        merged = merge_updates(first, third)
        assert DocShape().absorb_whole(merged)[1] is False, kind
        held: Doc[Any] = Doc()
        held.apply_update(merged)
        assert pending_parts(held, [merged]), kind  # what the room's look then finds
