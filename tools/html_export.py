"""A letter's document (ProseMirror JSON) as HTML, for `replay --format html` (tools/render.py).

It covers every node and mark the web editor's schema has (web/src/editor/schema.ts: StarterKit,
tables, task lists, images, text alignment, highlight, text style, sub/superscript), rendered as
TipTap renders them, so the page reads back into a TipTap editor as the letter was (a `data:`
image only with the Image extension's `allowBase64`). Any editor, or a backend posting Yjs, can
put any value in any attribute, and an auditor opens this page in the app's own origin: every
value is escaped, URLs are kept only for schemes that cannot run code, CSS values only when they
match a plain shape (no `;`, `url(`, `expression(`). A node or mark of a type the schema lacks
keeps its content, wrapped in an element naming it in `data-steno-unknown`, rather than being
dropped."""

import html
import re
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
Attrs = dict[str, str | None]  # an HTML element's attributes; None leaves one out

# Nodes whose children are inline content (text, images, hard breaks).
_TEXTBLOCKS = {"paragraph", "heading", "codeBlock"}
_PLAIN = {"blockquote": "blockquote", "bulletList": "ul", "listItem": "li", "tableRow": "tr"}
_PLAIN_MARKS = {
    "bold": "strong",
    "italic": "em",
    "underline": "u",
    "strike": "s",
    "code": "code",
    "subscript": "sub",
    "superscript": "sup",
}


def to_html(document: Json) -> str:
    return _children(document, inline=False)


def header_html(rows: list[tuple[str, str]], note: str) -> str:
    """A replay's provenance above the letter (tools/render.py): `rows` as a definition list,
    then `note`, every value escaped; marked `data-steno-provenance` so that it is told (and
    stripped) from the letter's own content."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f'<header data-steno-provenance=""><dl>{items}</dl><p>{html.escape(note)}</p></header>\n'


def _children(node: Json, inline: bool) -> str:
    content = node.get("content")
    if not isinstance(content, list):
        return ""
    return "".join(_node(child, inline) for child in content if isinstance(child, dict))


def _node(node: Json, inline: bool) -> str:
    kind = str(node.get("type", ""))
    if kind == "text":
        return _text(node)
    attrs = node.get("attrs")
    attrs = attrs if isinstance(attrs, dict) else {}
    if kind in _PLAIN:
        return _element(_PLAIN[kind], {}, _children(node, inline=False))
    render = _NODES.get(kind)
    if render is not None:
        return render(attrs, _children(node, inline=kind in _TEXTBLOCKS))
    # Unknown: its content kept and its type named; a <div> would close an enclosing <p>.
    content = node.get("content")
    has_text = isinstance(content, list) and any(
        isinstance(child, dict) and child.get("type") == "text" for child in content
    )
    inner = _children(node, inline=inline or has_text)
    return _element("span" if inline else "div", {"data-steno-unknown": kind}, inner)


def _element(tag: str, attrs: Attrs, inner: str | None) -> str:
    """`<tag a="v">inner</tag>`, every value escaped; `inner` None: a void element."""
    values = "".join(
        f' {name}="{html.escape(value, quote=True)}"'
        for name, value in attrs.items()
        if value is not None
    )
    return f"<{tag}{values}>" if inner is None else f"<{tag}{values}>{inner}</{tag}>"


# Nodes ------------------------------------------------------------------------------------


def _paragraph(attrs: Json, inner: str) -> str:
    return _element("p", {"style": _align(attrs.get("textAlign"))}, inner)


def _heading(attrs: Json, inner: str) -> str:
    level = _level(attrs.get("level"))
    return _element(f"h{level}", {"style": _align(attrs.get("textAlign"))}, inner)


def _level(value: Any) -> int:
    """A heading's level, 1-6, from whatever the document holds (any JS value may be there)."""
    try:
        return min(max(int(value), 1), 6)
    except (TypeError, ValueError, OverflowError):  # None (NaN), a string, Infinity
        return 1


def _ordered_list(attrs: Json, inner: str) -> str:
    start = _integer(attrs.get("start"), 0, 10**9)
    kind = attrs.get("type")
    return _element(
        "ol",
        {
            "start": None if start in (None, 1) else str(start),
            "type": kind if kind in ("a", "A", "i", "I") else None,
        },
        inner,
    )


def _code_block(attrs: Json, inner: str) -> str:
    language = _match(_LANGUAGE, attrs.get("language"))
    code = _element("code", {"class": language and f"language-{language}"}, inner)
    return f"<pre>{code}</pre>"


def _image(attrs: Json, _inner: str) -> str:
    return _element(
        "img",
        {
            "src": _safe_url(attrs.get("src"), _IMAGE_SCHEMES, data_images=True),
            "alt": _string(attrs.get("alt")),
            "title": _string(attrs.get("title")),
            "width": _dimension(attrs.get("width")),
            "height": _dimension(attrs.get("height")),
        },
        None,
    )


def _task_item(attrs: Json, inner: str) -> str:
    checked = _truthy(attrs.get("checked"))
    box = _element(
        "input",
        {"type": "checkbox", "checked": "checked" if checked else None, "disabled": "disabled"},
        None,
    )
    return _element(
        "li",
        {"data-type": "taskItem", "data-checked": "true" if checked else "false"},
        f"<label>{box}<span></span></label><div>{inner}</div>",
    )


def _cell(tag: str) -> Callable[[Json, str], str]:
    def render(attrs: Json, inner: str) -> str:
        colspan = _integer(attrs.get("colspan"), 1, 1000)
        rowspan = _integer(attrs.get("rowspan"), 1, 65534)
        widths = attrs.get("colwidth")
        ints = [_integer(w, 1, 10**6) for w in widths] if isinstance(widths, list) else []
        cell: Attrs = {
            "colspan": None if colspan in (None, 1) else str(colspan),
            "rowspan": None if rowspan in (None, 1) else str(rowspan),
            "colwidth": ",".join(map(str, ints)) if ints and None not in ints else None,
            "style": _align(attrs.get("align")),
        }
        return _element(tag, cell, inner)

    return render


_NODES: dict[str, Callable[[Json, str], str]] = {
    "paragraph": _paragraph,
    "heading": _heading,
    "orderedList": _ordered_list,
    "codeBlock": _code_block,
    "horizontalRule": lambda _a, _i: "<hr>",
    "hardBreak": lambda _a, _i: "<br>",
    "hard_break": lambda _a, _i: "<br>",  # ProseMirror's own name; text output counts it too
    "image": _image,
    "taskList": lambda _a, inner: _element("ul", {"data-type": "taskList"}, inner),
    "taskItem": _task_item,
    "table": lambda _a, inner: f"<table><tbody>{inner}</tbody></table>",
    "tableCell": _cell("td"),
    "tableHeader": _cell("th"),
}


# Marks ------------------------------------------------------------------------------------


def _text(node: Json) -> str:
    out = html.escape(str(node.get("text", "")))
    marks = node.get("marks")
    for mark in marks if isinstance(marks, list) else []:
        if isinstance(mark, dict):
            out = _mark(mark, out)
    return out


def _mark(mark: Json, inner: str) -> str:
    name = str(mark.get("type", ""))
    attrs = mark.get("attrs")
    attrs = attrs if isinstance(attrs, dict) else {}
    if name in _PLAIN_MARKS:
        return _element(_PLAIN_MARKS[name], {}, inner)
    if name == "link":
        href = _safe_url(attrs.get("href"), _LINK_SCHEMES)
        if href is None:  # a link that could run code: its text only
            return inner
        link = {"href": href, "title": _string(attrs.get("title")), "rel": _REL}
        return _element("a", link, inner)
    if name == "highlight":
        color = _match(_COLOR, attrs.get("color"))
        style = color and f"background-color: {color}; color: inherit"
        return _element("mark", {"data-color": color, "style": style}, inner)
    if name == "textStyle":
        return _element("span", {"style": _text_style(attrs)}, inner)
    return _element("span", {"data-steno-unknown": name}, inner)


_REL = "noopener noreferrer nofollow"


def _text_style(attrs: Json) -> str | None:
    parts = [
        f"{prop}: {value}"
        for key, (prop, shape) in _STYLE_PROPERTIES.items()
        if (value := _match(shape, attrs.get(key))) is not None
    ]
    return "; ".join(parts) or None


# Values -----------------------------------------------------------------------------------

# Shapes a CSS value may have: none can end the declaration or load anything.
_COLOR = re.compile(
    r"#[0-9a-f]{3,8}|(?:rgb|rgba|hsl|hsla)\([0-9.,%/ +-]{1,60}\)|[a-z]{1,30}", re.IGNORECASE
)
_FONT_FAMILY = re.compile(r"[\w ,'\"-]{1,200}")
_LENGTH = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4})?(?:px|pt|em|rem|ex|ch|%)?|normal")
_LANGUAGE = re.compile(r"[\w+#.-]{1,40}")
_ALIGNMENTS = ("left", "center", "right", "justify")
# TextStyleKit's attributes of the textStyle mark: CSS property, shape of its value.
_STYLE_PROPERTIES = {
    "color": ("color", _COLOR),
    "backgroundColor": ("background-color", _COLOR),
    "fontFamily": ("font-family", _FONT_FAMILY),
    "fontSize": ("font-size", _LENGTH),
    "lineHeight": ("line-height", _LENGTH),
}


def _match(shape: re.Pattern[str], value: Any) -> str | None:
    if isinstance(value, str) and shape.fullmatch(value.strip()):
        return value.strip()
    return None


def _align(value: Any) -> str | None:
    return f"text-align: {value}" if value in _ALIGNMENTS else None


def _string(value: Any) -> str | None:
    """An attribute as the editor's DOM would write it (String(value)); objects: left out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness: the editor ticks a task item's box on any truthy `checked`."""
    return isinstance(value, dict | list) or bool(value)


def _integer(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = int(value)
    except (ValueError, OverflowError):  # "two", Infinity
        return None
    return number if low <= number <= high else None


def _dimension(value: Any) -> str | None:
    number = _integer(value, 0, 100_000)
    return None if number is None else str(number)


# Any editor can give a link any href; an auditor opens this page in the app's own origin.
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_IMAGE_SCHEMES = ("http:", "https:")


def _safe_url(value: Any, schemes: tuple[str, ...], data_images: bool = False) -> str | None:
    """The URL if following or loading it cannot run code: one of `schemes`, a relative
    reference, or (`data_images`) a data: URL of an image type."""
    if not isinstance(value, str):
        return None
    # Browsers drop ASCII whitespace and control characters inside a scheme ("java\tscript:").
    squeezed = "".join(c for c in value if c > " ").lower()
    scheme, colon, _ = squeezed.partition(":")
    if not colon or "/" in scheme or "?" in scheme or "#" in scheme:
        return value  # no scheme: a relative reference
    if squeezed.startswith(schemes) or (data_images and squeezed.startswith("data:image/")):
        return value
    return None
