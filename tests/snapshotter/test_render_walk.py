"""Rendering a long letter walks its blocks once. yrs finds a fragment's child at an index by
walking from the first child, so reading the blocks by index made each snapshot quadratic in
the paragraphs (10,000: seconds per version cut, replay, verify or diff). The body's native
fragment is wrapped to count the children yrs walks: a snapshot may walk each block a bounded
number of times, and after an edit it renders only the blocks the edit touched."""

from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

import snapshotter.document as document
from snapshotter.document import LetterDocument

FIELD = "default"
PARAGRAPHS = 2000


class CountingFragment:
    """A native XmlFragment whose child reads count the children yrs walks for them: the
    child at `index` costs index + 1 (yrs walks from the first), all of them their number."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.walked = 0

    def get(self, txn: Any, index: int) -> Any:
        self.walked += index + 1
        return self._native.get(txn, index)

    def children(self, txn: Any) -> list[Any]:
        out: list[Any] = self._native.children(txn)
        self.walked += len(out)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._native, name)


def _letter() -> tuple[Doc[Any], XmlFragment]:
    """Paragraphs, with headings (attributes), marks and hard breaks among them."""
    doc: Doc[Any] = Doc()
    body = doc.get(FIELD, type=XmlFragment)
    with doc.transaction():
        for i in range(PARAGRAPHS):
            if i % 50 == 0:
                level: dict[str, Any] = {"level": 2}  # a number, as TipTap writes it
                body.children.append(XmlElement("heading", level, [XmlText(f"Part {i}")]))
                continue
            text = XmlText(f"line {i} of the claim")
            block = body.children.append(XmlElement("paragraph", {}, [text]))
            if i % 7 == 0:
                text.format(0, 4, {"bold": True})
            if i % 11 == 0:
                block.children.append(XmlElement("hardBreak"))
                block.children.append(XmlText("after"))
    return doc, body


def _expected(body: XmlFragment) -> dict[str, Any]:
    return {"type": "doc", "content": [document._node_json(child) for child in body.children]}


def _counted(letter: LetterDocument) -> CountingFragment:
    counter = CountingFragment(letter._root.integrated)
    letter._root._integrated = counter
    return counter


def test_a_snapshot_walks_the_blocks_once(monkeypatch: pytest.MonkeyPatch) -> None:
    author, body = _letter()
    letter = LetterDocument(FIELD, author.get_update())
    walk = _counted(letter)
    assert letter.snapshot().document == _expected(body)
    assert walk.walked <= 2 * PARAGRAPHS  # by index: 2,001,000

    # An Enter mid-letter and a removed block: the cache follows them, one block is rendered.
    rendered: list[Any] = []
    render = document._node_json

    def counting(node: Any) -> dict[str, Any]:
        rendered.append(node)
        return render(node)

    before = author.get_state()
    with author.transaction():
        body.children.insert(PARAGRAPHS // 2, XmlElement("paragraph", {}, [XmlText("new")]))
        del body.children[10]
    letter.apply(author.get_update(before))
    monkeypatch.setattr(document, "_node_json", counting)
    walk.walked = 0
    snapshot = letter.snapshot()
    monkeypatch.undo()
    assert snapshot.document == _expected(body)
    assert len(rendered) == 1
    assert walk.walked <= 2 * (PARAGRAPHS + 1)
