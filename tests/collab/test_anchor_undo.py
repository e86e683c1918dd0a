"""Deleting a comment's text and undoing it brings the comment back on its text. Yjs'
UndoManager puts back copies of the deleted items (new ids) just before them; the anchor's
positions name the deleted ones, so the resolver follows a deleted character to its copy
(gateway/collab/anchors.py `Resolver._restored`). The edits are made by pycrdt's UndoManager,
which inserts its copies as Yjs' does, and by stock Yjs in Node; the anchor is resolved on a
replica that receives each edit as an update (deleted content garbage-collected), as the
gateway's document does."""

from typing import Any

import pytest
from pycrdt import Doc, UndoManager, XmlFragment, XmlText

from gateway.collab.anchors import Resolver, to_anchor
from gateway.content import initial_update, plain_text
from schemas.events import Anchor
from tests.collab.undo_replay import covered_after_steps

FIELD = "default"
TEXT = "Dear Sir,\nYes. The police report number 1011 says so.\nRegards"
QUOTE = "police report number 1011"


class Editing:
    """An author's document with an UndoManager, and a replica fed its updates."""

    def __init__(self, text: str) -> None:
        self.doc: Doc[Any] = Doc()
        self.doc.apply_update(initial_update(text, FIELD))
        self.replica: Doc[Any] = Doc()
        self.replica.apply_update(self.doc.get_update())
        self.doc.observe(lambda event: self.replica.apply_update(event.update))
        fragment = self.doc.get(FIELD, type=XmlFragment)
        self.undo = UndoManager(scopes=[fragment], capture_timeout_millis=0)
        self.fragment = fragment

    def anchor(self, quote: str) -> Anchor:
        start = plain_text(self.doc, FIELD).index(quote)
        return to_anchor(self.replica.get_update(), FIELD, start, start + len(quote))

    def delete(self, text: str, para: int = 1) -> None:
        node = self.fragment.children[para].children[0]
        assert isinstance(node, XmlText)
        at = len(str(node)[: str(node).index(text)].encode())  # pycrdt edits by UTF-8 bytes
        with self.doc.transaction():
            del node[at : at + len(text.encode())]

    def type(self, text: str, at: int, para: int = 1) -> None:
        node = self.fragment.children[para].children[0]
        assert isinstance(node, XmlText)
        node.insert(len(str(node)[:at].encode()), text)

    def covered(self, anchor: Anchor) -> str | None:
        """The text the anchor covers on the replica; None: detached. A range restored whole
        ends at its own last character again (not open at `after`)."""
        where = Resolver(self.replica.get_update(), FIELD).resolve(anchor)
        if where.detached:
            return None
        text = plain_text(self.replica, FIELD)[where.start : where.end]
        assert not (text == QUOTE and where.open_end)
        return text


@pytest.mark.parametrize(
    "deleted",
    [
        "The police report number 1011",  # the reviewer's: the selection begins before it
        "police report number 1011 says",  # ... ends after it
        QUOTE,  # exactly
        "Yes. The police report number 1011 says so.",  # its whole paragraph's text
        "police report",  # its beginning only
        "number 1011",  # its ending only (without undo, `after` would end it: open_end)
        "report num",  # its middle
    ],
)
def test_an_undone_deletion_brings_the_anchor_back(deleted: str) -> None:
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    e.delete(deleted)
    assert e.covered(anchor) != QUOTE
    e.undo.undo()
    assert plain_text(e.replica, FIELD) == TEXT
    assert e.covered(anchor) == QUOTE


def test_redo_then_undo_again() -> None:
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    e.delete("The police report number 1011")
    e.undo.undo()
    e.undo.redo()
    assert e.covered(anchor) is None  # deleted again: the copies are
    e.undo.undo()
    assert e.covered(anchor) == QUOTE  # the copies' copies
    e.undo.redo()
    e.undo.undo()
    assert e.covered(anchor) == QUOTE


def test_at_a_paragraphs_start() -> None:
    """A copy inserted at the start of its paragraph has a right origin and no left one."""
    e = Editing("Dear Sir,\npolice report number 1011 says so.\nRegards")
    anchor = e.anchor(QUOTE)
    e.delete("police report number 1011 says")
    e.undo.undo()
    assert e.covered(anchor) == QUOTE
    e.undo.redo()
    e.undo.undo()
    assert e.covered(anchor) == QUOTE


def test_text_typed_in_its_place_does_not_bring_it_back() -> None:
    """Only the UndoManager's copies count: text typed at the place (even the same words) is
    new text, after the deleted characters, and the thread stays detached."""
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    e.delete(QUOTE)
    assert e.covered(anchor) is None
    e.type(QUOTE, len("Yes. The "))
    assert plain_text(e.replica, FIELD) == TEXT
    assert e.covered(anchor) is None


@pytest.mark.parametrize(
    ("typed", "deleted"),
    [("new ", QUOTE), ("a very long preface of words ", QUOTE), ("X", "police report")],
)
def test_text_typed_before_it_is_not_a_copy(typed: str, deleted: str) -> None:
    """Text typed just before the commented text has its first character as right origin, as a
    copy has; no undo: the thread is detached (or keeps what is left of its text), never moved
    onto the typed text (the reviewer's repro: it was marked on "new ")."""
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    e.type(typed, len("Yes. The "))
    e.delete(deleted)
    assert e.covered(anchor) == (None if deleted == QUOTE else " number 1011")


@pytest.mark.parametrize("edit", ["word removed", "typo fixed"])
def test_text_edited_then_deleted_and_undone_never_marks_other_text(edit: str) -> None:
    """Edited inside, its text is several items; deleted and undone, the copies lie among them.
    Not read as its quote, it is detached, never a range spanning copies (a reviewer's: it
    marked "number 1011 says so.")."""
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    if edit == "word removed":
        e.delete("report ")
    else:
        e.delete("01")
        e.type("00", str(e.fragment.children[1].children[0]).index("11"))
    e.undo.clear()
    e.delete(str(e.fragment.children[1].children[0]))
    e.undo.undo()
    assert e.covered(anchor) in (None, "police number 1011", "police report number 1001")


def test_text_typed_into_the_restored_text_stays_in_it() -> None:
    e = Editing(TEXT)
    anchor = e.anchor(QUOTE)
    e.delete("The police report number 1011")
    e.undo.undo()
    e.type("X", len("Yes. The police "))
    assert e.covered(anchor) == "police Xreport number 1011"


# Stock Yjs: TipTap's paragraphs, the reviewer's steps by Y.UndoManager; each update printed as
# it is made (base64), as the gateway receives them.
YJS_UNDO = r"""
const Y = require('yjs')
const doc = new Y.Doc()
const out = []
doc.on('update', (u) => out.push(Buffer.from(u).toString('base64')))
const fragment = doc.getXmlFragment('default')
const [text0, cut] = process.argv.slice(-2)
const paragraphs = text0.split('\n').map((line) => {
  const p = new Y.XmlElement('paragraph')
  p.insert(0, [new Y.XmlText(line)])
  return p
})
fragment.insert(0, paragraphs)
const text = fragment.get(1).get(0)
const undo = new Y.UndoManager(fragment, { captureTimeout: 0 })
const step = (f) => { const n = out.length; f(); return out.slice(n) }
const created = out.slice()
const at = text.toString().indexOf(cut)
const steps = [
  step(() => text.delete(at, cut.length)),
  step(() => undo.undo()), step(() => undo.redo()), step(() => undo.undo()),
]
process.stdout.write(JSON.stringify({ created, steps }))
"""


def test_stock_yjs_undo() -> None:
    seen = covered_after_steps(YJS_UNDO, [TEXT, "The police report number 1011"], QUOTE)
    assert seen == [None, QUOTE, None, QUOTE]
