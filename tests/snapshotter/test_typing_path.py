"""`LetterDocument._count_typing`, the shortcut for a text's typing, counts and shadows exactly
what the general walk of a change (`_count_text`) does, for any edits: typing, erasing,
formatting, paragraphs split off and removed, several in one transaction, multi-byte and astral
characters."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

import snapshotter.document as document
from snapshotter.document import EditDelta, LetterDocument

FIELD = "default"
CHARS = st.text(st.sampled_from("ab é€😀\n"), min_size=1, max_size=4)
AT = st.integers(0, 1000)  # taken modulo what the text or body holds
OPS = st.one_of(
    st.tuples(st.just("type"), AT, AT, CHARS),
    st.tuples(st.just("type bold"), AT, AT, CHARS),
    st.tuples(st.just("erase"), AT, AT, st.integers(1, 4)),
    st.tuples(st.just("bold"), AT, AT, st.integers(1, 4), st.sampled_from([True, None])),
    st.tuples(st.just("paragraph"), AT),
    st.tuples(st.just("remove"), AT),
)


def _boundaries(text: str) -> list[int]:
    """UTF-8 offsets of `text`'s characters (pycrdt's XmlText indices are bytes)."""
    return [len(text[:i].encode()) for i in range(len(text) + 1)]


def _edit(body: XmlFragment, op: tuple[Any, ...]) -> None:
    kind = op[0]
    blocks = list(body.children)
    if kind == "paragraph" or not blocks:
        at = op[1] % (len(blocks) + 1) if kind == "paragraph" else 0
        body.children.insert(at, XmlElement("paragraph", None, [XmlText("")]))
        return
    if kind == "remove":
        del body.children[op[1] % len(blocks)]
        return
    block = blocks[op[1] % len(blocks)]
    assert isinstance(block, XmlElement)
    text = block.children[0]
    assert isinstance(text, XmlText)
    places = _boundaries("".join(part for part, _ in text.diff()))  # str() writes the marks
    start = op[2] % len(places)
    if kind.startswith("type"):
        attrs = {"bold": True} if kind == "type bold" else None
        text.insert(places[start], op[3], attrs)
        return
    end = min(start + op[3], len(places) - 1)
    if end == start:
        return
    if kind == "erase":
        del text[places[start] : places[end]]
    else:
        text.format(places[start], places[end] - places[start], {"bold": op[4]})


def _counted(doc: LetterDocument, update: bytes, typing: bool) -> EditDelta:
    document.TYPING = typing
    try:
        return doc.apply(update)
    finally:
        document.TYPING = True


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(OPS, min_size=1, max_size=3), min_size=1, max_size=25))
def test_typing_counts_as_the_walk_does(transactions: list[list[tuple[Any, ...]]]) -> None:
    editor: Doc[Any] = Doc()
    body = editor.get(FIELD, type=XmlFragment)
    fast, walked = LetterDocument(FIELD), LetterDocument(FIELD)
    for ops in transactions:
        before = editor.get_state()
        with editor.transaction():
            for op in ops:
                _edit(body, op)
        update = editor.get_update(before)
        assert _counted(fast, update, True) == _counted(walked, update, False)
        assert fast._tree == walked._tree  # the shadow the next update is counted against
    assert fast.snapshot() == walked.snapshot()
