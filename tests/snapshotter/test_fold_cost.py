"""What one update costs the fold: one pycrdt transaction (the pending look shares it), and the
shadow kept in step without formatting runs while the text has none, equal to one built anew."""

import random
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from snapshotter.document import LetterDocument


def counted(letter: LetterDocument) -> list[int]:
    """Root transactions opened on `letter`'s document from now on (each commits once)."""
    doc: Any = letter._doc
    opened: list[int] = []
    original = doc.transaction

    def transaction(*args: Any, **kwargs: Any) -> Any:
        if doc._txn is None:
            opened.append(1)
        return original(*args, **kwargs)

    doc.transaction = transaction
    return opened


def test_an_update_is_applied_in_one_transaction() -> None:
    editor: Doc[Any] = Doc()
    body = editor.get("default", type=XmlFragment)
    text = body.children.append(XmlElement("paragraph")).children.append(XmlText("hi"))
    letter = LetterDocument("default")
    letter.apply(editor.get_update())
    opened = counted(letter)
    before = editor.get_state()
    text.insert(1, "x")
    delta = letter.apply(editor.get_update(before))
    assert (delta.inserted, delta.deleted) == (1, 0)
    assert len(opened) == 1


def test_the_shadow_kept_in_step_equals_one_built_anew() -> None:
    rng = random.Random(7)
    editor: Doc[Any] = Doc()
    body = editor.get("default", type=XmlFragment)
    letter = LetterDocument("default")
    texts: list[XmlText] = []
    for step in range(400):
        before = editor.get_state()
        if not texts or rng.random() < 0.05:
            texts.append(body.children.append(XmlElement("paragraph")).children.append(XmlText()))
        text = rng.choice(texts)
        size = len(text)
        choice = rng.random()
        if size and choice < 0.15:  # a mark set or cleared on a span
            start = rng.randrange(size)
            end = rng.randrange(start, size) + 1
            text.format(start, end, {"bold": True} if rng.random() < 0.7 else {"bold": None})
        elif size and choice < 0.35:
            start = rng.randrange(size)
            del text[start : rng.randrange(start, size) + 1]
        else:
            marks = {"italic": True} if rng.random() < 0.1 else None
            text.insert(rng.randrange(size + 1), "abc"[: rng.randrange(1, 4)], marks)
        letter.apply(editor.get_update(before))
        assert not letter.pending, step
        assert letter._tree == letter._shadow_now()[0], step
