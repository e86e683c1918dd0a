"""DocShape bookkeeping: bounded memory, clock gaps, duplicates, reload from stored state."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from gateway.preparse import DocShape, Limits, ProtocolError, check_update

from . import lib0

LIMITS = Limits()
CLIENT = 99
ROOT_TEXT = bytes([0x04]) + lib0.uint(1) + lib0.string("t")


def test_typing_keeps_the_shape_small() -> None:
    doc: Doc[Any] = Doc()
    paragraph = doc.get("default", type=XmlFragment).children.append(XmlElement("paragraph"))
    text = paragraph.children.append(XmlText(""))
    shape = DocShape.from_update(doc.get_update())
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(2000):
        text.insert(i, "x")
    for update in updates:
        shape.accept(update, LIMITS)
    assert shape.known_clock(doc.client_id) == 2002
    assert shape.run_count() <= 4  # fragment-level types, then one run of characters


def test_a_trusted_gap_is_kept_but_nothing_may_refer_into_it() -> None:
    shape = DocShape()  # a client's update past a hole is refused (clock_gap), an old log's not
    after_gap = lib0.update((CLIENT, 10, [ROOT_TEXT + lib0.string("b")]))
    assert shape.absorb(after_gap, LIMITS).blocks == ((CLIENT, 10, 11),)
    assert shape.known_clock(CLIENT) == 11
    into_gap = lib0.update((7, 0, [lib0.string_item(CLIENT, 3, "c")]))
    with pytest.raises(ProtocolError) as caught:
        shape.check(into_gap, LIMITS)
    assert caught.value.reason == "missing_dependency"
    shape.accept(lib0.update((CLIENT, 0, [ROOT_TEXT + lib0.string("a" * 10)])), LIMITS)
    assert shape.check(into_gap, LIMITS).blocks == ((7, 0, 1),)


def test_duplicates_change_nothing_and_stateless_infos_cannot_be_committed() -> None:
    shape = DocShape()
    update = lib0.update((CLIENT, 0, [ROOT_TEXT + lib0.string("abc")]))
    shape.accept(update, LIMITS)
    runs = shape.run_count()
    shape.accept(update, LIMITS)
    assert (shape.run_count(), shape.state_vector()) == (runs, {CLIENT: 3})
    with pytest.raises(ValueError, match="commit"):
        shape.commit(check_update(update, LIMITS))


def test_reloaded_shape_matches_the_live_one() -> None:
    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    quote = fragment.children.append(XmlElement("blockquote"))
    quote.children.append(XmlElement("paragraph")).children.append(XmlText("deep"))
    doc.get("t", type=Text).insert(0, "abc")
    del fragment.children[0]  # a deleted subtree: collected to Deleted/GC structs
    live, reloaded = DocShape(), DocShape.from_update(doc.get_update())
    live.absorb(doc.get_update())
    assert live.state_vector() == reloaded.state_vector()
    typed = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    typed.insert(3, "d")
    assert reloaded.accept(updates[0], LIMITS).blocks == live.accept(updates[0], LIMITS).blocks


def test_trusted_state_may_hold_what_clients_may_not_send() -> None:
    empty_block = lib0.update((CLIENT, 0, [ROOT_TEXT + lib0.string("")]))
    assert DocShape.from_update(empty_block).state_vector() == {}  # nothing to record
    with pytest.raises(ProtocolError) as caught:
        check_update(empty_block, LIMITS)
    assert caught.value.reason == "empty_struct"
