"""`replay --format html` covers every node and mark of the web editor's schema
(web/src/editor/schema.ts), as TipTap renders them, and whatever an editor put in an attribute
it injects no markup (tools/html_export.py)."""

from html.parser import HTMLParser
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from snapshotter.document import LetterDocument
from tools.html_export import to_html

Json = dict[str, Any]


def _p(*content: Json, **attrs: Any) -> Json:
    node: Json = {"type": "paragraph", "content": list(content)}
    return {**node, "attrs": attrs} if attrs else node


def _t(text: str, *marks: Json) -> Json:
    return (
        {"type": "text", "text": text, "marks": list(marks)}
        if marks
        else {"type": "text", "text": text}
    )


def _n(kind: str, *content: Json, **attrs: Any) -> Json:
    node: Json = {"type": kind}
    if attrs:
        node["attrs"] = attrs
    if content:
        node["content"] = list(content)
    return node


def _html(*blocks: Json) -> str:
    return to_html({"type": "doc", "content": list(blocks)})


NODES = [
    (_p(_t("a")), "<p>a</p>"),
    (_p(_t("a"), textAlign="center"), '<p style="text-align: center">a</p>'),
    (_n("heading", _t("T"), level=3, textAlign="right"), '<h3 style="text-align: right">T</h3>'),
    (_n("blockquote", _p(_t("q"))), "<blockquote><p>q</p></blockquote>"),
    (_n("bulletList", _n("listItem", _p(_t("i")))), "<ul><li><p>i</p></li></ul>"),
    (_n("orderedList", _n("listItem", _p()), start=1), "<ol><li><p></p></li></ol>"),
    (_n("orderedList", _n("listItem", _p()), start=3, type="a"),
     '<ol start="3" type="a"><li><p></p></li></ol>'),
    (_n("codeBlock", _t("x < 1"), language="python"),
     '<pre><code class="language-python">x &lt; 1</code></pre>'),
    (_n("codeBlock", _t("x")), "<pre><code>x</code></pre>"),
    (_n("horizontalRule"), "<hr>"),
    (_p(_t("a"), _n("hardBreak"), _t("b")), "<p>a<br>b</p>"),
    (_n("image", src="https://e.com/s.png", alt="Sig", title="T", width=120, height="40"),
     '<img src="https://e.com/s.png" alt="Sig" title="T" width="120" height="40">'),
    (_n("image", src="data:image/png;base64,iVBO"), '<img src="data:image/png;base64,iVBO">'),
    (_n("taskList", _n("taskItem", _p(_t("done")), checked=True)),
     '<ul data-type="taskList"><li data-type="taskItem" data-checked="true"><label><input'
     ' type="checkbox" checked="checked" disabled="disabled"><span></span></label>'
     "<div><p>done</p></div></li></ul>"),
    (_n("taskItem", _p(), checked=False),
     '<li data-type="taskItem" data-checked="false"><label><input type="checkbox"'
     ' disabled="disabled"><span></span></label><div><p></p></div></li>'),
    (_n("table",
        _n("tableRow", _n("tableHeader", _p(_t("H")), colspan=2, rowspan=1, colwidth=None)),
        _n("tableRow",
           _n("tableCell", _p(_t("c")), colspan=1, rowspan=2, colwidth=[100], align="center"))),
     '<table><tbody><tr><th colspan="2"><p>H</p></th></tr><tr><td rowspan="2" colwidth="100"'
     ' style="text-align: center"><p>c</p></td></tr></tbody></table>'),
]  # fmt: skip


@pytest.mark.parametrize(("node", "expected"), NODES)
def test_each_node_renders_as_tiptap_does(node: Json, expected: str) -> None:
    assert _html(node) == expected


MARKS = [
    ({"type": "bold"}, "<strong>x</strong>"),
    ({"type": "italic"}, "<em>x</em>"),
    ({"type": "underline"}, "<u>x</u>"),
    ({"type": "strike"}, "<s>x</s>"),
    ({"type": "code"}, "<code>x</code>"),
    ({"type": "subscript"}, "<sub>x</sub>"),
    ({"type": "superscript"}, "<sup>x</sup>"),
    ({"type": "highlight"}, "<mark>x</mark>"),
    ({"type": "highlight", "attrs": {"color": "#ffff00"}},
     '<mark data-color="#ffff00" style="background-color: #ffff00; color: inherit">x</mark>'),
    ({"type": "link", "attrs": {"href": "https://e.com/?a=1&b=2", "title": "T"}},
     '<a href="https://e.com/?a=1&amp;b=2" title="T" rel="noopener noreferrer nofollow">x</a>'),
    ({"type": "textStyle", "attrs": {"color": "rgb(1, 2, 3)", "backgroundColor": "red",
      "fontFamily": "Times New Roman, serif", "fontSize": "12pt", "lineHeight": "1.5"}},
     '<span style="color: rgb(1, 2, 3); background-color: red; font-family: Times New Roman,'
     ' serif; font-size: 12pt; line-height: 1.5">x</span>'),
]  # fmt: skip


@pytest.mark.parametrize(("mark", "expected"), MARKS)
def test_each_mark_renders_as_tiptap_does(mark: Json, expected: str) -> None:
    assert _html(_p(_t("x", mark))) == f"<p>{expected}</p>"


def test_marks_nest() -> None:
    assert (
        _html(_p(_t("x", {"type": "bold"}, {"type": "italic"})))
        == "<p><em><strong>x</strong></em></p>"
    )


def test_unknown_types_keep_their_content_and_are_named() -> None:
    block = _n("callout", _p(_t("inside")), tone="warn")
    assert _html(block) == '<div data-steno-unknown="callout"><p>inside</p></div>'
    # Inside a paragraph a <div> would end the paragraph: a <span>.
    inline = _p(_t("a"), _n("mention", _t("Bo"), id="7"), _t("b", {"type": "comment"}))
    assert _html(inline) == (
        '<p>a<span data-steno-unknown="mention">Bo</span>'
        '<span data-steno-unknown="comment">b</span></p>'
    )
    assert _html(_n('x"><script>', _t("t"))) == (
        '<div data-steno-unknown="x&quot;&gt;&lt;script&gt;">t</div>'
    )


HOSTILE = [
    'x" onerror="alert(1)',
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
    " java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "red; background-image: url(https://evil.example/t)",
    "expression(alert(1))",
    "1px}</style><script>alert(1)</script>",
    "center; color: red",
    "'/><svg onload=alert(1)>",
]


class _Tags(HTMLParser):
    """The elements and attributes of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))


def _every_slot(value: str) -> Json:
    """A document with `value` in every attribute the renderer reads."""
    marks: list[Json] = [
        {"type": "link", "attrs": {"href": value, "title": value}},
        {"type": "highlight", "attrs": {"color": value}},
        {"type": "textStyle", "attrs": dict.fromkeys(
            ("color", "backgroundColor", "fontFamily", "fontSize", "lineHeight"), value)},
        {"type": value},
    ]  # fmt: skip
    cell = dict.fromkeys(("colspan", "rowspan", "align"), value) | {"colwidth": [value]}
    return {
        "content": [
            _n("image", src=value, alt=value, title=value, width=value, height=value),
            _n("heading", _t(value, *marks), level=value, textAlign=value),
            _n("orderedList", _n("taskItem", _p(), checked=value), start=value, type=value),
            _n("codeBlock", _t(value), language=value),
            _n(
                "table",
                _n("tableRow", _n("tableCell", _p(), **cell), _n("tableHeader", _p(), **cell)),
            ),
            _n(value, _t(value)),
        ]
    }


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_attribute_values_inject_nothing(value: str) -> None:
    parser = _Tags()
    parser.feed(to_html(_every_slot(value)))
    tags = [tag for tag, _ in parser.seen]
    links = tags.count("a")  # a link with a scheme that could run code is dropped: its text kept
    assert links <= 1 and [tag for tag in tags if tag != "a"] == [
        "img", "h1", "span", "span", "mark", "ol", "li", "label", "input", "span", "div", "p",
        "pre", "code", "table", "tbody", "tr", "td", "p", "th", "p", "div",
    ]  # fmt: skip
    for tag, attrs in parser.seen:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            target = "".join(c for c in attrs.get(name) or "" if c > " ").lower()
            assert not target.startswith(("javascript:", "data:text")), (tag, attrs)
        # No CSS value outside its plain shape: none of these is a colour, length or font.
        assert value.strip() not in (attrs.get("style") or ""), (tag, attrs)


def test_hostile_values_that_are_plain_text_are_kept_escaped() -> None:
    value = '"><script>alert(1)</script>'
    out = _html(_n("image", src="https://e.com/a.png", alt=value))
    assert (
        out
        == '<img src="https://e.com/a.png" alt="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">'
    )


@pytest.mark.parametrize(
    "src",
    ["javascript:alert(1)", "JAVA\nSCRIPT:x", "data:text/html;base64,PHNjcmlwdD4=",
     "data:application/pdf,x", "vbscript:x", "mailto:a@b.c", None, 7, ["https://e.com"]],
)  # fmt: skip
def test_images_that_are_not_http_or_data_images_lose_their_src(src: object) -> None:
    assert _html(_n("image", src=src, alt="Sig")) == '<img alt="Sig">'


def test_the_editors_own_document_renders_whole() -> None:
    """The shapes y-tiptap writes, through the snapshotter's rendering, as the auditor's
    reviewer posted them (an image, an alignment, a highlight, a superscript, a ticked task)."""
    doc: Doc[Any] = Doc()
    frag = doc.get("default", type=XmlFragment)
    frag.children.append(XmlElement("image", {"src": "https://e.com/sig.png", "alt": "Signature"}))
    frag.children.append(XmlElement("paragraph", {"textAlign": "center"}, [XmlText("Centered")]))
    para = frag.children.append(XmlElement("paragraph", {}, [XmlText("")]))
    para.children[0].insert(0, "Deadline", {"highlight": {"color": "#ffff00"}})
    para.children[0].insert(8, " 1st", {"superscript": {}})
    # y-tiptap writes `checked` as a boolean, which pycrdt's annotations do not foresee.
    ticked: Any = {"checked": True}
    item = XmlElement("taskItem", ticked, [XmlElement("paragraph", {}, [XmlText("Done")])])
    frag.children.append(XmlElement("taskList", {}, [item]))
    document = LetterDocument("default", doc.get_update()).snapshot().document
    assert to_html(document) == (
        '<img src="https://e.com/sig.png" alt="Signature">'
        '<p style="text-align: center">Centered</p>'
        '<p><mark data-color="#ffff00" style="background-color: #ffff00; color: inherit">'
        "Deadline</mark><sup> 1st</sup></p>"
        '<ul data-type="taskList"><li data-type="taskItem" data-checked="true"><label>'
        '<input type="checkbox" checked="checked" disabled="disabled"><span></span></label>'
        "<div><p>Done</p></div></li></ul>"
    )
