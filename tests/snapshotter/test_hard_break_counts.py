"""A hard break (Shift+Enter: a hardBreak element in its paragraph, as y-prosemirror writes it)
is one "\\n" of the plain text GET /v1/letters/{id} serves, and the audit trail counts it so: one
character inserted or deleted (it counted none)."""

from collections.abc import Callable

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from snapshotter.document import LetterDocument

FIELD = "default"


class Letter:
    def __init__(self, first: XmlElement) -> None:
        self.doc: Doc[XmlFragment] = Doc()
        self.root = self.doc.get(FIELD, type=XmlFragment)
        self.root.children.append(first)
        self.snapshotter = LetterDocument(FIELD, self.doc.get_update())

    def edit(self, change: Callable[[XmlFragment], object]) -> tuple[int, int, set[int]]:
        """What the snapshotter counts of the update `change` makes."""
        before = self.doc.get_state()
        change(self.root)
        delta = self.snapshotter.apply(self.doc.get_update(before))
        return delta.inserted, delta.deleted, delta.paragraphs


def _paragraph(*children: XmlText | XmlElement) -> XmlElement:
    return XmlElement("paragraph", {}, list(children))


def _first(root: XmlFragment) -> XmlElement:
    line = root.children[0]
    assert isinstance(line, XmlElement)
    return line


def _type_a_break(root: XmlFragment) -> None:
    line = _first(root)  # Shift+Enter after "Line A", then "Line B"
    line.children.append(XmlElement("hardBreak", {}))
    line.children.append(XmlText("Line B"))


def test_a_hard_break_typed_and_removed_counts_one_character() -> None:
    letter = Letter(_paragraph(XmlText("Line A")))
    assert letter.edit(_type_a_break) == (7, 0, {0})
    assert letter.snapshotter.snapshot().content == "Line A\nLine B"

    # Backspace at the start of "Line B"
    assert letter.edit(lambda root: _first(root).children.__delitem__(1)) == (0, 1, {0})
    assert letter.snapshotter.snapshot().content == "Line ALine B"


def test_a_block_holding_a_hard_break_counts_it_pasted_and_removed() -> None:
    letter = Letter(_paragraph(XmlText("Dear Sir,")))
    pasted = _paragraph(XmlText("a"), XmlElement("hardBreak", {}), XmlText("b"))
    assert letter.edit(lambda root: root.children.append(pasted)) == (3, 0, {1})
    assert letter.snapshotter.snapshot().content == "Dear Sir,\na\nb"

    assert letter.edit(lambda root: root.children.__delitem__(1)) == (0, 3, {1})
