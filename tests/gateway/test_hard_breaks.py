"""A hard break (Shift+Enter: y-prosemirror's Y.XmlElement("hardBreak") between a paragraph's
Y.XmlText runs) is one "\\n" in the letter's plain text, in what GET /v1/letters/{id} renders and
comment offsets count (gateway/content.py) as in the snapshotter's rendering (versions, history,
diffs): the two are the same text, character for character, so offsets agree.
Pure: documents built with pycrdt as TipTap shapes them."""

from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from gateway.collab.anchors import to_anchor
from gateway.content import INLINE, plain_text
from snapshotter.document import INLINE as SNAPSHOTTER_INLINE
from snapshotter.document import LetterDocument

FIELD = "default"


def _p(*children: Any, tag: str = "paragraph") -> XmlElement:
    return XmlElement(tag, {}, [XmlText(c) if isinstance(c, str) else c for c in children])


def _br() -> XmlElement:
    return XmlElement("hardBreak")


def _image() -> XmlElement:
    return XmlElement("image", {"src": "https://example.org/a.png"})


def _cell(*children: Any) -> XmlElement:
    return XmlElement("tableCell", {}, [_p(*children)])


CASES: dict[str, tuple[list[XmlElement], str]] = {
    "paragraph": ([_p("line one", _br(), "line two")], "line one\nline two"),
    "two breaks": ([_p("a", _br(), _br(), "b"), _p("c")], "a\n\nb\nc"),
    "at start and end": ([_p(_br(), "middle", _br()), _p("next")], "\nmiddle\n\nnext"),
    "only a break": ([_p("before"), _p(_br()), _p("after")], "before\n\n\nafter"),
    "heading": ([_p("Title", _br(), "sub", tag="heading"), _p("body")], "Title\nsub\nbody"),
    "list items": (
        [
            XmlElement(
                "bulletList",
                {},
                [
                    XmlElement("listItem", {}, [_p("one", _br(), "one b")]),
                    XmlElement("listItem", {}, [_p("two"), _p("two b", _br())]),
                ],
            ),
            _p("after"),
        ],
        "one\none b\ntwo\ntwo b\n\nafter",
    ),
    "table cells": (
        [
            XmlElement(
                "table",
                {},
                [XmlElement("tableRow", {}, [_cell("a", _br(), "b"), _cell(_br(), "c")])],
            )
        ],
        "a\nb\n\nc",
    ),
    "images": (
        [_p("a", _image(), "b", _br(), "c"), _image(), _p(_image()), _p("d")],
        "ab\nc\n\n\nd",
    ),
    "empty text around a break": ([_p("", _br(), ""), _p("x")], "\n\nx"),
}


def _doc(blocks: list[XmlElement]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    fragment = doc.get(FIELD, type=XmlFragment)
    with doc.transaction():
        for block in blocks:
            fragment.children.append(block)
    return doc


@pytest.mark.parametrize("name", list(CASES))
def test_content_text_is_the_snapshotters(name: str) -> None:
    blocks, expected = CASES[name]
    doc = _doc(blocks)
    snapshot = LetterDocument(FIELD, doc.get_update()).snapshot()
    assert snapshot.content == expected
    assert plain_text(doc, FIELD) == expected


def test_inline_nodes_are_the_snapshotters() -> None:
    assert {k: v or "" for k, v in SNAPSHOTTER_INLINE.items()} == INLINE


def test_offsets_after_a_break_anchor_the_word_there() -> None:
    doc = _doc([_p("Dear Sir,"), _p("We claim", _br(), "damages of 5000", _br())])
    state = doc.get_update()
    text = plain_text(doc, FIELD)
    start = text.index("damages")
    assert start == len("Dear Sir,\nWe claim\n")
    assert to_anchor(state, FIELD, start, start + len("damages")).quote == "damages"
    assert to_anchor(state, FIELD, start - 1, start + 2).quote == "\nda"  # the break itself
