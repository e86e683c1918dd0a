"""The document body as TipTap shapes it: paragraphs in the Y.XmlFragment `default`.

y-prosemirror maps a ProseMirror paragraph to Y.XmlElement("paragraph") holding a Y.XmlText;
initial content is written in that shape so TipTap's Collaboration extension shows it as-is.

The text (`plain_text`, what GET /v1/letters/{id} returns and comment anchors count in) is
walked with pycrdt's bindings of the Yrs types (`pycrdt._pycrdt`) under one transaction: its
wrappers create a Python object and re-enter a transaction per node, ten times the cost on a
long letter (20,000 paragraphs: ~1 s against ~0.13 s, held on the event loop by a GET).
pycrdt is pinned below 0.15.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text, Transaction, XmlElement, XmlFragment, XmlText
from pycrdt._pycrdt import Text as YText
from pycrdt._pycrdt import Transaction as YTransaction
from pycrdt._pycrdt import XmlElement as YXmlElement
from pycrdt._pycrdt import XmlFragment as YXmlFragment
from pycrdt._pycrdt import XmlText as YXmlText

# What a paragraph of `initial_update` takes in the update at least besides its text: an empty
# one 31-37 bytes with pycrdt's random 53-bit client ids, 24 with a one-byte id (each paragraph
# names its right neighbour's id). Content whose lines alone would exceed a letter's size is
# refused unbuilt.
PARAGRAPH_BYTES = 24


def initial_update(content: str, field: str) -> bytes:
    """A Yjs v1 update putting one paragraph per line of `content` into the fragment `field`.

    Built from the last line to the first, each put before the others: Yrs finds an index by
    walking the fragment from its start, so appending made 100,000 lines cost ~110 s of CPU
    (quadratic), inserting at 0 costs ~1 s (the letter reads the same)."""
    doc: Doc[Any] = Doc()
    fragment = doc.get(field, type=XmlFragment)
    with doc.transaction():
        for line in reversed(content.split("\n")):
            fragment.children.insert(0, XmlElement("paragraph", {}, [XmlText(line)]))
    return doc.get_update()


def plain_text(doc: Doc[Any], field: str) -> str:
    """The document's text: one line per block element, a hard break one "\n" in its line, as
    the snapshotter renders it (or the Y.Text of that name)."""
    body = leaves(doc, field)
    return body.text()


@dataclass(frozen=True, slots=True)
class Leaf:
    """One run of text in the rendering: a Y.XmlText (or the body Y.Text) and where it starts."""

    node: YXmlText | YText
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True, slots=True)
class Body:
    """The runs of a body, and the length of its text: the line breaks after the last run (an
    empty paragraph, a hard break or an image at the end) are in none, so the text is
    `render(runs, length)`, never the runs alone."""

    runs: list[Leaf]
    length: int

    def text(self) -> str:
        return render(self.runs, self.length)


def leaves(doc: Doc[Any], field: str) -> Body:
    """The body's text runs, positioned as `plain_text` renders them, and its text's length."""
    with doc.transaction() as transaction:  # one for the whole walk
        txn = raw_transaction(transaction)
        root = doc.get(field, type=XmlFragment).integrated
        # No children, not `len` (a Y.Text root read as a fragment counts its characters).
        if not root.children(txn) and _has_text(doc, field):
            text = doc.get(field, type=Text)
            body = str(text)
            return Body([Leaf(text.integrated, 0, body)], len(body))
        out: list[Leaf] = []
        length = _walk(root, 0, out, txn, blocks=True)
        return Body(out, length)


def render(runs: Sequence[Leaf], length: int) -> str:
    """The text `length` long holding `runs`: "\n" fills the gaps between them and what follows
    the last one."""
    out, at = [], 0
    for leaf in runs:
        out.append("\n" * (leaf.start - at) + leaf.text)
        at = leaf.end
    out.append("\n" * (length - at))
    return "".join(out)


def raw_transaction(transaction: Transaction) -> YTransaction:
    """The bindings' transaction of an entered pycrdt one."""
    txn = transaction._txn
    assert txn is not None  # set on entering the transaction
    return txn


def _has_text(doc: Doc[Any], field: str) -> bool:
    try:
        doc.get(field, type=Text)
    except Exception:  # the root exists with another type: it is not a Y.Text
        return False
    return True


def _walk(
    node: YXmlFragment | YXmlElement | YXmlText,
    at: int,
    out: list[Leaf],
    txn: YTransaction,
    blocks: bool = False,
) -> int:
    """Append the leaves under `node` starting at offset `at`; return the offset after it.
    As the snapshotter renders a block (snapshotter/document.py `_block_text`): a run of text and
    inline nodes is one line, each other child a line of its own, "\\n" between lines; the
    root's children are all lines (`blocks`)."""
    if isinstance(node, YXmlText):
        text = _text(node, txn)
        out.append(Leaf(node, at, text))
        return at + len(text)
    lines = run = False  # a line written; a run of inline content open
    for child in node.children(txn):
        inline = None if blocks else _inline(child, txn)
        if inline is None:  # a block
            at += 1 if lines or run else 0  # the "\n" between lines
            at, lines, run = _walk(child, at, out, txn), True, False
            continue
        text, starts = inline
        if starts and not run:
            at, run = at + (1 if lines else 0), True
        if isinstance(child, YXmlText):  # its leaf, even empty: anchors find a paragraph by it
            out.append(Leaf(child, at, text))
        at += len(text)  # a hard break's "\n" is a gap between leaves: `render` fills it
    return at


# Inline elements and their text, as the snapshotter renders them (its INLINE; an element of
# another name is a block). Services do not import each other: tests/gateway/test_hard_breaks.py
# holds the two renderings equal.
INLINE = {"text": "", "hardBreak": "\n", "hard_break": "\n", "image": ""}


def _inline(
    node: YXmlFragment | YXmlElement | YXmlText, txn: YTransaction
) -> tuple[str, bool] | None:
    """An inline child's text and whether it starts a line (empty text does not, as in the
    snapshotter's JSON it is no node); None for a block."""
    if isinstance(node, YXmlText):
        text = _text(node, txn)
        return text, bool(text)
    tag = node.tag() if isinstance(node, YXmlElement) else None  # type: ignore[attr-defined]
    inline = INLINE.get(tag or "")
    return None if inline is None else (inline, True)


def _text(node: YXmlText, txn: YTransaction) -> str:
    return "".join(chunk for chunk, _ in node.diff(txn) if isinstance(chunk, str))
