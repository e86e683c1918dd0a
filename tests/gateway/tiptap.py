"""Letters built with pycrdt as TipTap shapes them: blocks of Y.XmlText runs and inline
elements in the Y.XmlFragment the editor binds (pure: no gateway)."""

from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

FIELD = "default"


def p(*children: Any, tag: str = "paragraph") -> XmlElement:
    return XmlElement(tag, {}, [XmlText(c) if isinstance(c, str) else c for c in children])


def br() -> XmlElement:
    return XmlElement("hardBreak")


def empty_p() -> XmlElement:
    """A paragraph as TipTap makes it on Enter at the end: no Y.XmlText in it."""
    return XmlElement("paragraph", {})


def doc_of(blocks: list[XmlElement]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    fragment = doc.get(FIELD, type=XmlFragment)
    with doc.transaction():
        for block in blocks:
            fragment.children.append(block)
    return doc
