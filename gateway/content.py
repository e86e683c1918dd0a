"""The document body as TipTap shapes it: paragraphs in the Y.XmlFragment `default`.

y-prosemirror maps a ProseMirror paragraph to Y.XmlElement("paragraph") holding a Y.XmlText;
initial content is written in that shape so TipTap's Collaboration extension shows it as-is.
"""

from typing import Any

from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText


def initial_update(content: str, field: str) -> bytes:
    """A Yjs v1 update putting one paragraph per line of `content` into the fragment `field`."""
    doc: Doc[Any] = Doc()
    fragment = doc.get(field, type=XmlFragment)
    with doc.transaction():
        for line in content.split("\n"):
            fragment.children.append(XmlElement("paragraph", {}, [XmlText(line)]))
    return doc.get_update()


def plain_text(doc: Doc[Any], field: str) -> str:
    """The document's text: one line per block element (or the Y.Text of that name)."""
    root = doc.get(field, type=XmlFragment)
    blocks = [_text(child) for child in root.children]
    if blocks:
        return "\n".join(blocks)
    return str(doc.get(field, type=Text)) if _is_text(doc, field) else ""


def _is_text(doc: Doc[Any], field: str) -> bool:
    try:
        doc.get(field, type=Text)
    except Exception:  # the root exists with another type: it is not a Y.Text
        return False
    return True


def _text(node: XmlElement | XmlText | XmlFragment) -> str:
    if isinstance(node, XmlText):
        return "".join(chunk for chunk, _attrs in node.diff() if isinstance(chunk, str))
    parts = [_text(child) for child in node.children]
    if all(isinstance(child, XmlText) for child in node.children):
        return "".join(parts)
    return "\n".join(parts)
