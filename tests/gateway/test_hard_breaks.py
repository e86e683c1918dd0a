"""A hard break (Shift+Enter: y-prosemirror's Y.XmlElement("hardBreak") between a paragraph's
Y.XmlText runs) is one "\\n" in the letter's plain text, in what GET /v1/letters/{id} renders and
comment offsets count (gateway/content.py) as in the snapshotter's rendering (versions, history,
diffs): the two are the same text, character for character, so offsets agree.
Pure: documents built with pycrdt as TipTap shapes them."""

import random
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import XmlElement

from gateway.collab.anchors import AnchorError, Resolver, to_anchor
from gateway.content import INLINE, plain_text
from snapshotter.document import INLINE as SNAPSHOTTER_INLINE
from snapshotter.document import LetterDocument
from tests.gateway.tiptap import FIELD, br, doc_of, empty_p, p


def _image() -> XmlElement:
    return XmlElement("image", {"src": "https://example.org/a.png"})


def _cell(*children: Any) -> XmlElement:
    return XmlElement("tableCell", {}, [p(*children)])


def _item() -> XmlElement:
    return XmlElement("listItem", {}, [empty_p()])


CASES: dict[str, tuple[list[XmlElement], str]] = {
    "paragraph": ([p("line one", br(), "line two")], "line one\nline two"),
    "two breaks": ([p("a", br(), br(), "b"), p("c")], "a\n\nb\nc"),
    "at start and end": ([p(br(), "middle", br()), p("next")], "\nmiddle\n\nnext"),
    "only a break": ([p("before"), p(br()), p("after")], "before\n\n\nafter"),
    "heading": ([p("Title", br(), "sub", tag="heading"), p("body")], "Title\nsub\nbody"),
    "list items": (
        [
            XmlElement(
                "bulletList",
                {},
                [
                    XmlElement("listItem", {}, [p("one", br(), "one b")]),
                    XmlElement("listItem", {}, [p("two"), p("two b", br())]),
                ],
            ),
            p("after"),
        ],
        "one\none b\ntwo\ntwo b\n\nafter",
    ),
    "table cells": (
        [
            XmlElement(
                "table",
                {},
                [XmlElement("tableRow", {}, [_cell("a", br(), "b"), _cell(br(), "c")])],
            )
        ],
        "a\nb\n\nc",
    ),
    "images": (
        [p("a", _image(), "b", br(), "c"), _image(), p(_image()), p("d")],
        "ab\nc\n\n\nd",
    ),
    "empty text around a break": ([p("", br(), ""), p("x")], "\n\nx"),
    # Line breaks after the last run of text are in no leaf: the text still ends with them.
    "empty paragraph at the end": ([p("Regards,"), p("Avery"), empty_p()], "Regards,\nAvery\n"),
    "empty paragraphs at both ends": ([empty_p(), empty_p(), p("x"), empty_p()], "\n\nx\n"),
    "break at the end": ([p("a", br())], "a\n"),
    "image then empty paragraph at the end": ([p("a"), _image(), empty_p()], "a\n\n"),
    "image in a paragraph at the end": ([p("a"), p(_image())], "a\n"),
    "empty list item at the end": (
        [p("a"), XmlElement("bulletList", {}, [XmlElement("listItem", {}, [p("b")]), _item()])],
        "a\nb\n",
    ),
    "empty cells at the end": (
        [XmlElement("table", {}, [XmlElement("tableRow", {}, [_cell("a"), _cell(), _cell()])])],
        "a\n\n",
    ),
    "only empty paragraphs": ([empty_p(), empty_p(), empty_p()], "\n\n"),
    "one empty paragraph": ([empty_p()], ""),
    "no blocks": ([], ""),
}


@pytest.mark.parametrize("name", list(CASES))
def test_content_text_is_the_snapshotters(name: str) -> None:
    blocks, expected = CASES[name]
    doc = doc_of(blocks)
    snapshot = LetterDocument(FIELD, doc.get_update()).snapshot()
    assert snapshot.content == expected
    assert plain_text(doc, FIELD) == expected
    assert Resolver(doc.get_update(), FIELD).text == expected  # what comment quotes read


def _random_inline(rng: random.Random) -> list[Any]:
    kinds: list[str | Callable[[], XmlElement]] = ["", "ab", "é🙂", br, _image]
    return [k if isinstance(k, str) else k() for k in rng.choices(kinds, k=rng.randrange(4))]


def _random_block(rng: random.Random, depth: int) -> XmlElement:
    """A paragraph or heading of random inline content (maybe none, not even a Y.XmlText), an
    image, or a container (quote, list item, cell) of such blocks and images."""
    kind = rng.randrange(5 if depth else 3)
    if kind == 0:
        return _image()
    if kind <= 2:
        return p(*_random_inline(rng), tag=rng.choice(["paragraph", "heading"]))
    tag = rng.choice(["blockquote", "listItem", "tableCell"])
    return XmlElement(tag, {}, [_random_block(rng, depth - 1) for _ in range(rng.randrange(4))])


def test_random_documents_render_as_the_snapshotters() -> None:
    rng = random.Random(20261206)
    for _ in range(300):
        doc = doc_of([_random_block(rng, 2) for _ in range(rng.randrange(5))])
        expected = LetterDocument(FIELD, doc.get_update()).snapshot().content
        assert plain_text(doc, FIELD) == expected


def test_inline_nodes_are_the_snapshotters() -> None:
    assert {k: v or "" for k, v in SNAPSHOTTER_INLINE.items()} == INLINE


def test_offsets_after_a_break_anchor_the_word_there() -> None:
    doc = doc_of([p("Dear Sir,"), p("We claim", br(), "damages of 5000", br())])
    state = doc.get_update()
    text = plain_text(doc, FIELD)
    start = text.index("damages")
    assert start == len("Dear Sir,\nWe claim\n")
    assert to_anchor(state, FIELD, start, start + len("damages")).quote == "damages"
    assert to_anchor(state, FIELD, start - 1, start + 2).quote == "\nda"  # the break itself


def test_offsets_in_a_letter_ending_in_an_empty_paragraph() -> None:
    doc = doc_of([p("Regards,"), p("Avery"), empty_p()])
    state, text = doc.get_update(), plain_text(doc, FIELD)
    assert text == "Regards,\nAvery\n"
    start = text.index("Avery")
    assert to_anchor(state, FIELD, start, len(text)).quote == "Avery\n"  # up to the end
    with pytest.raises(AnchorError, match="only line breaks"):
        to_anchor(state, FIELD, len(text) - 1, len(text))
    with pytest.raises(AnchorError, match="outside the text"):
        to_anchor(state, FIELD, start, len(text) + 1)
