"""What a backend drafting into a Y.Doc loaded from a letter's state emits, and the text a state
holds."""

from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText


def with_paragraph(state: bytes, text: str) -> bytes:
    """What a backend drafting into a Y.Doc loaded from `state` emits: a paragraph appended."""
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    body = doc.get("default", type=XmlFragment)
    before = doc.get_state()
    with doc.transaction():
        paragraph = XmlElement("paragraph")
        body.children.append(paragraph)
        run = XmlText()
        paragraph.children.append(run)
        run.insert(0, text)
    return doc.get_update(before)


def text_of(state: bytes) -> str:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return str(doc.get("default", type=XmlFragment))
