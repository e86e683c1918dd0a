"""Edit counts say what changed in the letter's text: a paragraph split (Enter) or joined, a
block retyped (heading, list item), is text moved between blocks, not text deleted and inserted
again, however the editor's binding writes it (y-prosemirror: the tail deleted from the
paragraph and a new paragraph holding it inserted). The updates below have the shapes
y-prosemirror (y-tiptap 3.0.9, `updateYFragment`) gives these ProseMirror steps."""

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from snapshotter.audit import Bursts, edit_row
from snapshotter.document import EditDelta, LetterDocument
from snapshotter.moved import MovedText

FIELD = "default"


class Editor:
    """One shared document; each `edit` is one update, as one ProseMirror transaction."""

    def __init__(self, *texts: str) -> None:
        self.doc: Doc[Any] = Doc()
        self.root = self.doc.get(FIELD, type=XmlFragment)
        with self.doc.transaction():
            for text in texts:
                self.root.children.append(paragraph(text))
        self.letter = LetterDocument(FIELD, self.doc.get_update())

    def edit(self, change: Callable[[], None]) -> EditDelta:
        before = self.doc.get_state()
        with self.doc.transaction():
            change()
        update = self.doc.get_update(before)
        # A letter loaded from the state just before (an eviction, a restart) counts alike.
        loaded = LetterDocument(FIELD, self.letter.state()).apply(update)
        delta = self.letter.apply(update)
        assert loaded == delta
        return delta

    def text(self, *path: int) -> XmlText:
        node: Any = self.root
        for index in (*path, 0):
            node = node.children[index]
        assert isinstance(node, XmlText)
        return node

    def content(self) -> str:
        return self.letter.snapshot().content


def paragraph(text: str, tag: str = "paragraph") -> XmlElement:
    return XmlElement(tag, None, [XmlText(text)])


def utf8(text: str, at: int) -> int:
    """Character `at` of `text` as pycrdt's XmlText offsets count it: in UTF-8 bytes."""
    return len(text[:at].encode())


def split(editor: Editor, block: int, at: int, selected: int = 0) -> EditDelta:
    """Enter at `at` (replacing `selected` characters): y-prosemirror deletes the tail (and the
    selection) from the paragraph and inserts a new paragraph holding the tail."""

    def change() -> None:
        text = editor.text(block)
        tail = str(text)[at + selected :]
        editor.root.children.insert(block + 1, paragraph(tail))
        del text[utf8(str(text), at) :]

    return editor.edit(change)


def test_enter_in_a_colleagues_paragraph_counts_no_text() -> None:
    """Avery types " DRAFT" at the end of a colleague's 200-character paragraph, undoes it, and
    presses Enter in its middle: her row said +106 -106 characters, as if she had rewritten
    half the paragraph."""
    editor = Editor("Dear Sir,", "A" * 100 + "B" * 100, "Yours faithfully")
    bursts = Bursts(window_ms=5000)
    text = editor.text(1)
    deltas = [editor.edit(partial(text.insert, 200 + n, c)) for n, c in enumerate(" DRAFT")]

    def undo() -> None:
        del text[200:]

    deltas += [editor.edit(undo), split(editor, 1, 100)]
    assert deltas[-1] == EditDelta(inserted=0, deleted=0, paragraphs={1, 2})
    for n, delta in enumerate(deltas):
        assert bursts.edit("avery", n, 1000 + n, delta) is None
    [(user, burst)] = bursts.close()
    data = edit_row("L", "letters", 0, user, burst).change_data
    assert (data["inserted"], data["deleted"], data["paragraphs"]) == (6, 6, [1, 2])
    assert editor.content() == "Dear Sir,\n" + "A" * 100 + "\n" + "B" * 100 + "\nYours faithfully"


def test_split_join_and_retyped_blocks_count_only_the_text_that_changed() -> None:
    pasted = "Der Schaden beträgt 12.500 € 😀 und ist fällig."  # non-ASCII: counts in code points
    editor = Editor("Dear Sir,", pasted, "Regards")
    cut = pasted.index("€")

    assert split(editor, 1, cut) == EditDelta(paragraphs={1, 2})
    # Backspace at the second half's start: appended to the first, the second removed.
    tail = pasted[cut:]

    def join() -> None:
        editor.text(1).insert(utf8(pasted, cut), tail)
        del editor.root.children[2]

    assert editor.edit(join) == EditDelta(paragraphs={1, 2})
    assert editor.content() == f"Dear Sir,\n{pasted}\nRegards"
    # Enter over a selection of "ä" and "gt": those three characters are deleted, nothing else.
    assert split(editor, 1, pasted.index("ä"), selected=3) == EditDelta(
        deleted=3, paragraphs={1, 2}
    )

    def retype(node: Callable[[str], XmlElement], *path: int) -> Callable[[], None]:
        block = path[0]

        def change() -> None:  # y-prosemirror: the new block inserted, the old one removed
            editor.root.children.insert(block, node(str(editor.text(*path))))
            del editor.root.children[block + 1]

        return change

    heading = retype(lambda text: paragraph(text, "heading"), 0)
    assert editor.edit(heading) == EditDelta(paragraphs={0, 1})

    def listed(text: str) -> XmlElement:
        return XmlElement("bulletList", None, [XmlElement("listItem", None, [paragraph(text)])])

    assert editor.edit(retype(listed, 2)) == EditDelta(paragraphs={2, 3})
    assert editor.content().split("\n")[2] == " 12.500 € 😀 und ist fällig."
    assert editor.edit(retype(paragraph, 2, 0, 0)) == EditDelta(paragraphs={2, 3})

    # Two paragraphs pasted inside "Dear Sir,": "X" ends the first, "Y" begins the second,
    # which takes the rest ("ar Sir,"): 2 characters inserted.
    def paste() -> None:
        text = editor.text(0)
        rest = str(text)[2:]
        editor.root.children.insert(1, paragraph("Y" + rest))
        del text[2:]
        text.insert(2, "X")

    assert editor.edit(paste) == EditDelta(inserted=2, paragraphs={0, 1})
    assert editor.content().startswith("DeX\nYar Sir,\n")

    # A selection from " Sir," across the paragraph break to "Der " replaced by typing "Z":
    # y-prosemirror rewrites the end of the first text and removes the second paragraph.
    def type_over() -> None:
        text, second = editor.text(1), str(editor.text(2))
        del text[3:]
        text.insert(3, "Z" + second[4:])
        del editor.root.children[2]

    assert editor.edit(type_over) == EditDelta(inserted=1, deleted=9, paragraphs={1, 2})
    assert editor.content().startswith("DeX\nYarZSchaden")


def test_whole_blocks_removed_or_pasted_still_count_their_text() -> None:
    editor = Editor("Dear Sir,", "Damages total €12,500 😀.", "Regards")

    def remove() -> None:
        del editor.root.children[1]

    assert editor.edit(remove) == EditDelta(deleted=24, paragraphs={1})

    def paste() -> None:
        editor.root.children.insert(1, paragraph("Damages total €12,500 😀."))

    assert editor.edit(paste) == EditDelta(inserted=24, paragraphs={1})
    # A paragraph moved (dragged) below another in one update: the text only moved.

    def drag() -> None:
        editor.root.children.insert(3, paragraph("Damages total €12,500 😀."))
        del editor.root.children[1]

    assert editor.edit(drag).inserted == 0
    assert editor.content() == "Dear Sir,\nRegards\nDamages total €12,500 😀."


@pytest.mark.parametrize(
    ("deleted", "inserted", "moved"),
    [
        (["é"], ["è"], 0),  # the same first byte (C3), not the same character
        (["x€"], ["y¬"], 0),  # the same last byte (AC): not the same character
        (["aé"], ["aè"], 1),
        (["€é"], ["¬é"], 1),
        (["AB"], [], 0),
        (["abcabc"], ["abc"], 3),  # never more than either side holds
    ],
)
def test_moved_text_is_whole_characters(
    deleted: list[str], inserted: list[str], moved: int
) -> None:
    text = MovedText()
    text.deleted = [((0, n), piece.encode()) for n, piece in enumerate(deleted)]
    text.inserted = [((0, n), piece.encode()) for n, piece in enumerate(inserted)]
    assert text.characters() == moved
