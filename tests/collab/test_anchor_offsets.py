"""Anchor offsets are code points whatever the text: resolved after edits that put ASCII, BMP
non-ASCII (2 or 3 UTF-8 bytes, 1 UTF-16 unit) or astral characters (4 bytes, 2 units) before,
inside or after the range, in its paragraph (splitting the item that holds it) or an earlier one.
Pure: documents built with pycrdt, as TipTap shapes them (gateway/content.py)."""

from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlFragment, XmlText

from gateway.collab.anchors import Resolver, resolve_all, to_anchor
from gateway.content import initial_update, plain_text

FIELD = "default"
CHARS = ["a", "é", "€", "\u2019", "😀"]  # U+2019: a typographic apostrophe


@dataclass(frozen=True)
class Edit:
    at: int  # code points into the current rendering
    insert: str = ""
    delete: int = 0


def _doc(text: str) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(initial_update(text, FIELD))
    return doc


def _apply(doc: Doc[Any], edit: Edit) -> None:
    """An edit at a code-point position of the rendering, in the paragraph holding it."""
    lines = plain_text(doc, FIELD).split("\n")
    para, at = 0, edit.at
    while at > len(lines[para]):
        at -= len(lines[para]) + 1
        para += 1
    line = lines[para]
    node = doc.get(FIELD, type=XmlFragment).children[para].children[0]
    assert isinstance(node, XmlText)
    byte = len(line[:at].encode())  # pycrdt edits text by UTF-8 bytes
    if edit.delete:
        del node[byte : byte + len(line[at : at + edit.delete].encode())]
    if edit.insert:
        node.insert(byte, edit.insert)


def _moved(start: int, end: int, edit: Edit) -> tuple[int, int]:
    """Where [start, end) goes: an insertion at its first character goes before it, one right
    after its last stays outside; deletions here are outside the range."""
    n = len(edit.insert) - edit.delete
    assert edit.delete == 0 or edit.at + edit.delete <= start or edit.at >= end
    return (start + n if edit.at <= start else start, end + n if edit.at < end else end)


def _cases() -> list[Any]:
    out = []
    for ch in CHARS:
        for name, text, anchored in [
            ("ascii text", "Dear Sir,\nWe demand 5000 EUR", "5000"),
            (
                "non-ascii text",
                f"Dear {ch}Sir,\nWe {ch}demand 5{ch}0{ch} E{ch}R",
                f"5{ch}0{ch}",
            ),
        ]:
            s = text.index(anchored)
            e = s + len(anchored)
            second = text.index("\n") + 1
            edits = {
                "none": [],
                "paragraph start": [Edit(second, f"{ch} ")],
                "split before": [Edit(s - 3, ch)],
                "split before twice": [Edit(s - 3, ch + ch), Edit(s - 6, f"{ch}x{ch}")],
                "inside": [Edit(s + 2, ch)],
                "at first character": [Edit(s, ch)],
                "right after": [Edit(e, ch)],
                "after": [Edit(e + 1, ch * 3)],
                "earlier paragraph": [Edit(2, ch * 2), Edit(0, "¶")],
                "deleted before": [Edit(s - 3, ch * 2), Edit(s - 3, delete=1)],
                "everywhere": [
                    Edit(e + 1, ch),
                    Edit(s + 1, ch),
                    Edit(s - 1, ch),
                    Edit(second, ch),
                    Edit(1, ch),
                ],
            }
            for kind, edit_list in edits.items():
                out.append(pytest.param(text, s, e, edit_list, id=f"{ch}-{name}-{kind}"))
    return out


@pytest.mark.parametrize(("text", "start", "end", "edits"), _cases())
def test_offsets_are_code_points_after_edits(
    text: str, start: int, end: int, edits: list[Edit]
) -> None:
    doc = _doc(text)
    anchor = to_anchor(doc.get_update(), FIELD, start, end)
    assert anchor.quote == text[start:end]
    for edit in edits:
        _apply(doc, edit)
        start, end = _moved(start, end, edit)
    where = Resolver(doc.get_update(), FIELD).resolve(anchor)
    assert (where.start, where.end) == (start, end), plain_text(doc, FIELD)


@pytest.mark.parametrize("ch", CHARS)
def test_offsets_in_a_body_of_one_text(ch: str) -> None:
    """A body that is one Y.Text (not TipTap's fragment) resolves the same way."""
    doc: Doc[Any] = Doc()
    body = doc.get(FIELD, type=Text)
    body += f"Dear Sir,\nWe demand 5{ch}00 EUR"
    start = str(body).index("5")
    anchor = to_anchor(doc.get_update(), FIELD, start, start + 4)
    body.insert(len(b"Dear "), ch * 2)  # splits the item before the range
    body.insert(0, ch)
    where = Resolver(doc.get_update(), FIELD).resolve(anchor)
    assert (where.start, where.end) == (start + 3, start + 7)
    assert str(body)[start + 3 : start + 7] == f"5{ch}00"


def test_many_paragraphs_some_empty() -> None:
    """Each paragraph's id comes from one pass over all of them: anchors in paragraphs before,
    between and after empty ones (which get text later) land in their own."""
    lines = [f"Line {i} caf\u00e9 \u20ac{i}" if i % 3 else "" for i in range(60)]
    doc = _doc("\n".join(lines))
    text = plain_text(doc, FIELD)
    wanted = [f"Line {i} " for i in (1, 29, 31, 59)]
    ranges = [(text.index(w), text.index(w) + len(w)) for w in wanted]
    assert resolve_all(doc.get_update(), FIELD, []) == []  # nothing to resolve: no work
    anchors = [to_anchor(doc.get_update(), FIELD, s, e) for s, e in ranges]
    # Last to first, so each position holds when it is applied; paragraphs 0 and 30 are empty.
    for at in (len(text), text.index("Line 31") - 1, 0):
        edit = Edit(at, "\u2019\U0001f600 ")
        _apply(doc, edit)
        ranges = [_moved(s, e, edit) for s, e in ranges]
    found = resolve_all(doc.get_update(), FIELD, anchors)
    assert [(w.start, w.end) for w in found] == ranges
    now = plain_text(doc, FIELD)
    assert [now[s:e] for s, e in ranges] == wanted
