"""The auditor's HTML rendering of a letter: whatever an editor put in the document, it runs no
code in the reader's browser and always renders (tools/html_export.py)."""

import pytest

from tools.html_export import to_html


def _link(href: object) -> dict[str, object]:
    mark = {"type": "link", "attrs": {"href": href}}
    return {"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [mark]}]}


@pytest.mark.parametrize(
    "href",
    ["javascript:alert(1)", "JavaScript:alert(1)", " java\tscript:alert(1)", "\x01javascript:x",
     "data:text/html,<script>alert(1)</script>", "vbscript:x", None, 7],
)  # fmt: skip
def test_links_that_could_run_code_are_dropped(href: object) -> None:
    assert to_html({"content": [_link(href)]}) == "<p>x</p>"


@pytest.mark.parametrize(
    "href",
    ["https://example.com/a?b=1", "http://x", "mailto:a@b.c", "/v1/letters", "page#a:b", "a/b:c"],
)
def test_links_that_only_navigate_are_kept(href: str) -> None:
    assert to_html({"content": [_link(href)]}).startswith('<p><a href="')


@pytest.mark.parametrize("level", [None, "two", float("inf"), 1e300, -3, 2.0, "4"])
def test_any_heading_level_renders(level: object) -> None:
    heading = {
        "type": "heading",
        "attrs": {"level": level},
        "content": [{"type": "text", "text": "T"}],
    }
    out = to_html({"content": [heading]})
    assert out[:3] in {"<h1", "<h2", "<h4", "<h6"} and ">T</h" in out


def test_text_and_attributes_are_escaped() -> None:
    out = to_html({"content": [_link('https://x/"><script>alert(1)</script>')]})
    assert "<script>" not in out and "&quot;" in out
    text = {"type": "paragraph", "content": [{"type": "text", "text": "<img src=x onerror=1>"}]}
    assert to_html({"content": [text]}) == "<p>&lt;img src=x onerror=1&gt;</p>"
