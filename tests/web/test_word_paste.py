"""Pasting from Microsoft Word: a numbered list arrives as a list (it came as paragraphs starting
"1."), and Word's fonts and sizes stay out of the shared letter (every run came with a textStyle
mark). Other HTML pastes as before.

The paste is a real `paste` event carrying the HTML Word 365 for Windows puts on the clipboard
(word365_paste.html), dispatched in Debian's Chromium against `steno-collab dev`, as
tests/web/test_browser.py (the stack and browser fixtures of conftest.py).
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.web.browser import EDITABLE, create_letter, open_letter, pages, saved, sign_in

WORD_HTML = (Path(__file__).parent / "word365_paste.html").read_text(encoding="utf-8")

# What the browser hands the page when someone pastes: a paste event with the clipboard's data
# (Word puts the text on the clipboard too).
_PASTE = """(html) => {
  const data = new DataTransfer()
  data.setData('text/html', html)
  data.setData('text/plain', new DOMParser().parseFromString(html, 'text/html').body.innerText)
  const init = { clipboardData: data, bubbles: true, cancelable: true }
  document.querySelector('.letter-body').dispatchEvent(new ClipboardEvent('paste', init))
}"""
_JSON = "() => document.querySelector('.letter-body').editor.getJSON()"


async def _paste_into_new_paragraph(page: Page, html: str) -> None:
    await page.wait_for_selector(EDITABLE)
    await page.click(".letter-body p >> nth=-1")
    await page.keyboard.press("End")
    await page.keyboard.press("Enter")
    await page.evaluate(_PASTE, html)


async def _document(page: Page) -> dict[str, Any]:
    doc: dict[str, Any] = await page.evaluate(_JSON)
    return doc


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("content", []):
        yield from _nodes(child)


def _text(node: dict[str, Any]) -> str:
    return "".join(n.get("text", "") for n in _nodes(node))


def _marked(doc: dict[str, Any], mark: str) -> list[str]:
    """The text runs carrying `mark`."""
    return [n["text"] for n in _nodes(doc) if any(m["type"] == mark for m in n.get("marks", []))]


def _mark_attrs(doc: dict[str, Any], mark: str) -> list[dict[str, Any]]:
    return [
        m.get("attrs", {}) for n in _nodes(doc) for m in n.get("marks", []) if m["type"] == mark
    ]


def _text_styles(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The attributes set (not null or "") of every textStyle mark: font, size, colour..."""
    return [
        {k: v for k, v in m.get("attrs", {}).items() if v}
        for n in _nodes(doc)
        for m in n.get("marks", [])
        if m["type"] == "textStyle"
    ]


def _items(lst: dict[str, Any]) -> list[str]:
    """Each list item's own first paragraph."""
    return [_text(item["content"][0]) for item in lst["content"]]


async def test_a_word_list_pastes_as_a_list_without_words_fonts(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Word paste", "Dear Claims Adjuster,")
        await _paste_into_new_paragraph(avery, WORD_HTML)
        await expect(avery.locator(".letter-body ol").first).to_be_visible()
        await saved(avery)
        doc = await _document(avery)

        blocks = [(n["type"], _text(n)) for n in doc["content"]]
        assert blocks[0] == ("paragraph", "Dear Claims Adjuster,"), blocks
        assert ("heading", "Damages") in blocks and ("heading", "Demand") in blocks, blocks
        first, restarted = [n for n in doc["content"] if n["type"] == "orderedList"]
        assert _items(first) == [
            "Medical expenses of $18,240.00",
            "Lost wages of $6,800.00",
            "Pain and suffering",
        ]
        nested = first["content"][0]["content"][1]
        assert nested["type"] == "bulletList"
        assert _items(nested) == ["Emergency room, St. Mary\u2019s Hospital"]
        # "Restart numbering" in Word is another list (lfo2), not a fourth item.
        assert _items(restarted) == ["Property damage to the vehicle"]
        assert restarted["attrs"]["start"] == 1

        assert _marked(doc, "bold") == ["the following damages", "$18,240.00", "$6,800.00"]
        assert _marked(doc, "italic") == ["reasonable and necessary", "St. Mary\u2019s Hospital"]
        assert _marked(doc, "underline") == ["January 15, 2027"]
        assert _marked(doc, "link") == ["avery@smithlaw.example"]
        assert _marked(doc, "highlight") == ["confidential"]  # Word's highlighter, kept
        assert _mark_attrs(doc, "highlight") == [{"color": "yellow"}]
        # No font, size or line height of Word's; the one colour the author chose stays.
        assert _text_styles(doc) == [{"color": "#C00000"}]

        await open_letter(parker, base_url, "parker", letter)
        await expect(parker.locator(".letter-body ol").first).to_be_visible()
        assert await _document(parker) == doc
        assert avery.errors == parker.errors == []  # type: ignore[attr-defined]


async def test_other_html_pastes_as_before(base_url: str, browser: Browser) -> None:
    """A web page's HTML keeps its styles and its "1." stays typed text: only Word's changes."""
    html = (
        '<p>From the <span style="font-family: Georgia; font-size: 14px">court\'s site</span>:</p>'
        "<p>1. Filed <b>March 3</b></p>"
    )
    async with pages(browser, 1) as (avery,):
        await sign_in(avery, base_url, "avery")
        await create_letter(avery, "Web paste", "Dear Sir,")
        await _paste_into_new_paragraph(avery, html)
        await expect(avery.locator(".letter-body")).to_contain_text("1. Filed March 3")
        doc = await _document(avery)
        assert [(n["type"], _text(n)) for n in doc["content"]] == [
            ("paragraph", "Dear Sir,"),
            ("paragraph", "From the court's site:"),
            ("paragraph", "1. Filed March 3"),
        ]
        assert _text_styles(doc) == [{"fontFamily": "Georgia", "fontSize": "14px"}]
        assert _marked(doc, "bold") == ["March 3"]
