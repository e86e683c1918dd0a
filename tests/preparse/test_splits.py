"""Item splits: an update cutting a long item at many places is refused before pycrdt splits it
(gateway/wire/splits.py); what editors send (typing, a paste, a replace-all) is not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText, merge_updates

from gateway.preparse import DocShape, Limits, ProtocolError, check_update

LIMITS = Limits()


def _paragraph(length: int) -> tuple[Doc[Any], XmlText]:
    """TipTap's shape: one paragraph's XmlText holding `length` characters, ONE item in Yrs."""
    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    paragraph = fragment.children.append(XmlElement("paragraph", {}, [XmlText("x" * length)]))
    return doc, paragraph.children[0]


def _edit(doc: Doc[Any], change: Callable[[], None]) -> bytes:
    before = doc.get_state()
    with doc.transaction():
        change()
    return doc.get_update(before)


def _refused(shape: DocShape, update: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        shape.check(update, LIMITS)
    return caught.value


def test_the_reviewers_attack_is_refused_before_pycrdt_splits() -> None:
    # split_stall.py scaled down: 2,000 inserts in descending order into a 100,000-char item
    # (weight 2e8; the reviewer's 20,000 into 1,000,000 weigh 2e10).
    doc, text = _paragraph(100_000)
    shape = DocShape.from_update(doc.get_update())

    def insert_everywhere() -> None:
        for i in range(1999, -1, -1):
            text.insert(i * 50 + 1, "y")

    refusal = _refused(shape, _edit(doc, insert_everywhere))
    assert (refusal.reason, refusal.close_code) == ("split_cost_exceeded", 4413)


def test_deleting_many_ranges_inside_one_item_costs_the_same() -> None:
    doc, text = _paragraph(100_000)
    shape = DocShape.from_update(doc.get_update())

    def delete_everywhere() -> None:
        for i in range(1999, -1, -1):
            del text[i * 50 + 1 : i * 50 + 2]

    refusal = _refused(shape, _edit(doc, delete_everywhere))
    assert (refusal.reason, refusal.close_code) == ("split_cost_exceeded", 4413)


def test_an_update_cutting_its_own_long_item_is_refused_without_a_shape() -> None:
    # The long item need not be the letter's: the update may bring it and cut it at once.
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    text += "x" * 100_000
    long_item = doc.get_update()
    cutter: Doc[Any] = Doc()
    cutter.apply_update(long_item)
    t = cutter.get("t", type=Text)

    def insert_everywhere() -> None:
        for i in range(1999, -1, -1):
            t.insert(i * 50 + 1, "y")

    cuts = _edit(cutter, insert_everywhere)
    with pytest.raises(ProtocolError) as caught:
        check_update(merge_updates(long_item, cuts), LIMITS)
    assert caught.value.reason == "split_cost_exceeded"


def test_typing_and_pasting_into_a_long_paragraph_cost_nothing() -> None:
    doc, text = _paragraph(1_000_000)  # a cut in it weighs 10^6: typing must not count
    shape = DocShape.from_update(doc.get_update())
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for _ in range(200):  # typing at the end, then a paste
        text.insert(len(text), "z")
    text.insert(len(text), "pasted " * 5_000)
    for update in updates:
        assert shape.accept(update, LIMITS).split_cost == 0


def _replace_all(texts: list[Any], places: tuple[int, ...]) -> None:
    for text in texts:
        for at in places:  # descending: each place as the user saw it
            del text[at : at + 3]
            text.insert(at, "bar")


def test_a_replace_all_in_a_long_loaded_letter_is_taken() -> None:
    # 300 occurrences in 150 paragraphs of 1,000 characters, all by one author (a letter
    # created with content, or reloaded): each cut weighs a paragraph plus the author's blocks.
    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    for _ in range(150):
        paragraph = fragment.children.append(XmlElement("paragraph"))
        paragraph.children.append(XmlText(("foo " + "x" * 496) * 2))
    shape = DocShape.from_update(doc.get_update())
    editor: Doc[Any] = Doc()
    editor.apply_update(doc.get_update())
    texts = [
        paragraph.children[0] for paragraph in editor.get("default", type=XmlFragment).children
    ]
    info = shape.accept(_edit(editor, lambda: _replace_all(texts, (500, 0))), LIMITS)
    blocks = 450 + 600  # each paragraph's element, text and string; then the 600 cuts
    assert info.split_cost == 600 * (1000 + blocks)


def test_a_replace_all_in_text_typed_live_is_taken_at_the_edge() -> None:
    # Text typed in this session, at the end each time: Yrs squashed it into one item of
    # 40,080 characters, and a cut in it weighs that. 240 occurrences replaced: 480 cuts,
    # 1.96e7 of the 2e7 allowed.
    doc, text = _paragraph(0)
    shape = DocShape.from_update(doc.get_update())
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for _ in range(240):
        for typed in ("foo ", "x" * 163):
            text.insert(len(text), typed)
    for update in updates:
        assert shape.accept(update, LIMITS).split_cost == 0
    places = tuple(range(167 * 239, -1, -167))
    info = shape.accept(_edit(doc, lambda: _replace_all([text], places)), LIMITS)
    assert 0.95 * LIMITS.max_split_cost < info.split_cost <= LIMITS.max_split_cost
