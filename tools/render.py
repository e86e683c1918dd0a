"""Output formats of a replayed letter: text, HTML, JSON (ProseMirror shape) and Yjs bytes.

Text is read on terminals: its control characters other than newlines are escaped
(tools/terminal.py); JSON and Yjs bytes are the letter exactly."""

import html
import json
from typing import Any

from tools.replay import Replayed
from tools.terminal import visible_lines
from tools.timefmt import iso

FORMATS = ("text", "html", "json", "yjs")
Json = dict[str, Any]

_TAGS = {
    "paragraph": "p",
    "blockquote": "blockquote",
    "bulletList": "ul",
    "orderedList": "ol",
    "listItem": "li",
    "codeBlock": "pre",
    "horizontalRule": "hr",
    "hardBreak": "br",
    "table": "table",
    "tableRow": "tr",
    "tableCell": "td",
    "tableHeader": "th",
}
_MARKS = {"bold": "strong", "italic": "em", "underline": "u", "strike": "s", "code": "code"}
_VOID = {"hr", "br"}


def render(replayed: Replayed, fmt: str) -> bytes:
    if fmt == "yjs":
        return replayed.state
    if fmt == "text":
        return (visible_lines(replayed.snapshot.content) + "\n").encode()  # for terminals
    if fmt == "html":
        return (to_html(replayed.snapshot.document) + "\n").encode()
    if fmt == "json":
        return (json.dumps(to_json(replayed), indent=2, sort_keys=True) + "\n").encode()
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def to_json(replayed: Replayed) -> Json:
    return {
        "letter_id": replayed.letter_id,
        "partition": replayed.partition,
        "position": replayed.position,
        "as_of": None if replayed.last_ms is None else iso(replayed.last_ms),
        "base_version": replayed.base_version,
        "updates_replayed": replayed.updates,
        "content": replayed.snapshot.content,
        "document": replayed.snapshot.document,
    }


def to_html(document: Json) -> str:
    """ProseMirror-shaped JSON as HTML (TipTap's StarterKit node and mark names)."""
    return "".join(_node(child) for child in document.get("content", []))


def _node(node: Json) -> str:
    kind = node.get("type", "")
    if kind == "text":
        return _text(node)
    inner = "".join(_node(child) for child in node.get("content", []))
    if kind == "heading":
        tag = f"h{_level(node.get('attrs', {}).get('level'))}"
    else:
        tag = _TAGS.get(kind, "div")
    if tag in _VOID:
        return f"<{tag}>"
    if tag == "pre":
        inner = f"<code>{inner}</code>"
    return f"<{tag}>{inner}</{tag}>"


def _text(node: Json) -> str:
    out = html.escape(str(node.get("text", "")))
    for mark in node.get("marks", []):
        name = mark.get("type", "")
        if name == "link":
            href = _safe_href(mark.get("attrs", {}).get("href"))
            if href is not None:
                out = f'<a href="{html.escape(href, quote=True)}">{out}</a>'
        elif name in _MARKS:
            out = f"<{_MARKS[name]}>{out}</{_MARKS[name]}>"
    return out


def _level(value: Any) -> int:
    """A heading's level, 1-6, from whatever the document holds (any JS value may be there)."""
    try:
        return min(max(int(value), 1), 6)
    except (TypeError, ValueError, OverflowError):  # None (NaN), a string, Infinity
        return 1


# Any editor can give a link any href; an auditor opens this page in the app's own origin.
_SAFE_SCHEMES = ("http:", "https:", "mailto:")


def _safe_href(value: Any) -> str | None:
    """The link's target if following it cannot run code: http(s), mailto, or relative."""
    if not isinstance(value, str):
        return None
    # Browsers drop ASCII whitespace and control characters inside a scheme ("java\tscript:").
    squeezed = "".join(c for c in value if c > " ").lower()
    scheme, colon, _ = squeezed.partition(":")
    if not colon or "/" in scheme or "?" in scheme or "#" in scheme:
        return value  # no scheme: a relative reference
    return value if squeezed.startswith(_SAFE_SCHEMES) else None
