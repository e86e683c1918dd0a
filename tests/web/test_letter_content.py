"""What opening a letter in the page does to the letter: it sends back only what the server lacks
(not the whole letter on every open), it keeps the TipTap types backends write (tables and
friends), and once the letter is refused for size, it stops taking input it could not save.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, WebSocket, expect
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from steno_collab.processes import free_port
from tests.web.browser import EDITABLE, auth, new_page, saved, sign_in, type_at_end
from tests.web.stacks import start_stack

SYNC_STEP2, SYNC_UPDATE = b"\x00\x01", b"\x00\x02"  # y-protocols: messageSync, then its kind


def _record_document_frames(page: Page) -> list[bytes]:
    """Every sync step 2 and update the page sends on a letter's socket, as sent."""
    sent: list[bytes] = []

    def on_socket(ws: WebSocket) -> None:
        if "/v1/letter-" in ws.url:
            ws.on("framesent", lambda frame: _keep(sent, frame))

    page.on("websocket", on_socket)
    return sent


def _keep(sent: list[bytes], frame: str | bytes) -> None:
    if isinstance(frame, bytes) and frame[:2] in (SYNC_STEP2, SYNC_UPDATE):
        sent.append(frame)


async def _new_letter(http: httpx.AsyncClient, title: str, content: str) -> str:
    body = {"firm_id": "demo-firm", "title": title, "content": content}
    created = await http.post("/v1/letters", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["letter_id"])


async def _state(http: httpx.AsyncClient, letter: str) -> XmlFragment:
    doc: Doc[Any] = Doc()
    doc.apply_update((await http.get(f"/v1/letters/{letter}/state")).content)
    return doc.get("default", type=XmlFragment)


async def test_opening_a_letter_sends_nothing_of_it_back_and_offline_edits_still_arrive(
    base_url: str, browser: Browser
) -> None:
    """The page counted the server's sync step 2 as unconfirmed (its `sync` event came before the
    step 2 reached the shadow of confirmed state), so every open sent the whole letter back as
    an update: another copy in the log, for every peer, against the document-size limit."""
    lines = [
        f"Paragraph {n}: the tenant owes the rent for the month, with interest." for n in range(80)
    ]
    content = "\n".join(lines)
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery")) as http:
        letter = await _new_letter(http, "Opened twice", content)
        context, page = await new_page(browser)
        try:
            sent = _record_document_frames(page)
            await page.goto(f"{base_url}/?as=parker#/letters/{letter}")
            await saved(page)
            await page.reload()
            await saved(page)
            await expect(page.locator(".letter-body")).to_contain_text("Paragraph 79")
            # A copy of the letter would be a frame at least as long as its text.
            assert [len(f) for f in sent if len(f) > len(content) // 4] == []

            await context.set_offline(True)
            await type_at_end(page, " Written offline.")
            await expect(page.locator(".connection")).to_have_attribute("data-pending", "true")
            await context.set_offline(False)
            await saved(page)
            text = (await http.get(f"/v1/letters/{letter}")).json()["content"]
            assert text == content + " Written offline."
        finally:
            await context.close()


def _paragraph(text: str, **attrs: Any) -> XmlElement:
    return XmlElement("paragraph", attrs, [XmlText(text)])


def _cell(kind: str, text: str) -> XmlElement:
    spans: dict[str, Any] = {"colspan": 1, "rowspan": 1}  # numbers, as TipTap writes them
    return XmlElement(kind, spans, [_paragraph(text)])


def _tiptap_letter() -> Doc[Any]:
    """A letter as a TipTap app with tables, alignment, images, task lists and text styles
    writes it (y-tiptap's encoding: a node per element, marks as text attributes)."""
    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    fragment.children.append(_paragraph("Dear Sir,"))
    rows = [("tableHeader", "Item", "Amount"), ("tableCell", "Rent", "1200")]
    table = XmlElement(
        "table",
        {},
        [XmlElement("tableRow", {}, [_cell(kind, a), _cell(kind, b)]) for kind, a, b in rows],
    )
    fragment.children.append(table)
    fragment.children.append(_paragraph("Centred.", textAlign="center"))
    fragment.children.append(XmlElement("image", {"src": "https://example.com/seal.png"}))
    checked: dict[str, Any] = {"checked": True}
    task = XmlElement("taskItem", checked, [_paragraph("Pay")])
    fragment.children.append(XmlElement("taskList", {}, [task]))
    styled = XmlText()
    fragment.children.append(XmlElement("paragraph", {}, [styled]))
    styled.insert(0, "Marked", {"highlight": {"color": "#ffff00"}})
    styled.insert(6, " red", {"textStyle": {"color": "#ff0000"}})
    styled.insert(10, " H2O", {"subscript": {}})
    styled.insert(14, " under", {"underline": {}})
    return doc


def _outline(element: XmlFragment | XmlElement) -> list[Any]:
    """Element names with their attributes, nested; text runs with their marks."""
    out: list[Any] = []
    for child in element.children:
        if isinstance(child, XmlElement):
            # pycrdt annotates the view's __iter__ as returning an Iterable: call it for mypy.
            attrs = {k: v for k, v in child.attributes.__iter__() if v is not None}
            out.append((child.tag, attrs, _outline(child)))
        elif isinstance(child, XmlText):
            out += [(text, marks) for text, marks in child.diff()]
    return out


async def test_a_letter_with_tables_and_styles_keeps_them_when_the_page_opens_it(
    base_url: str, browser: Browser
) -> None:
    """The page's editor knew StarterKit only, and y-tiptap deletes from the shared document the
    elements (and text runs with marks) its schema lacks: a posted table vanished for everyone."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery")) as http:
        letter = await _new_letter(http, "Styled", "")
        update = _tiptap_letter().get_update()
        posted = await http.post(
            f"/v1/letters/{letter}/updates",
            content=update,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert posted.status_code == 200, posted.text
        before = _outline(await _state(http, letter))
        kinds = ["paragraph", "table", "paragraph", "image", "taskList", "paragraph"]
        assert [node[0] for node in before] == kinds

        context, page = await new_page(browser)
        try:
            await sign_in(page, base_url, "avery")
            await page.goto(f"{base_url}/#/letters/{letter}")
            await page.wait_for_selector(EDITABLE)
            await page.locator(".letter-body p").first.click()
            await page.keyboard.press("End")
            await page.keyboard.type(" Typed.", delay=20)
            await saved(page)
            after = _outline(await _state(http, letter))
            assert after[0] == ("paragraph", {}, [("Dear Sir, Typed.", None)])
            assert _kept(before[1:], after[1:]), after
            await expect(page.locator(".letter-body table td").first).to_have_text("Rent")
        finally:
            await context.close()


def _kept(before: Any, after: Any) -> bool:
    """`after` holds `before`: the same elements and text runs, each element with at least the
    attributes posted (the editor may add the ones it fills in with defaults: colwidth, alt...)."""
    if isinstance(before, list):
        return len(before) == len(after) and all(map(_kept, before, after))
    if len(before) == 3:
        (tag, attrs, children), (tag_now, attrs_now, children_now) = before, after
        kept_attrs = all(attrs_now.get(k) == v for k, v in attrs.items())
        return bool(tag == tag_now and kept_attrs and _kept(children, children_now))
    return bool(before == after)


async def test_a_letter_refused_for_size_turns_read_only_until_tried_again(
    data_dir: Path, browser: Browser
) -> None:
    """At the document-size limit (4413, final for y-websocket) the page only said "too large"
    and kept taking input that could never be saved."""
    port, secret = free_port(), "s" * 32
    base = f"http://127.0.0.1:{port}"
    gateway = await start_stack(data_dir, port, secret, max_document_bytes="6000")
    context, page = await new_page(browser)
    try:
        async with httpx.AsyncClient(base_url=base, headers=auth("avery", secret=secret)) as http:
            letter = await _new_letter(http, "Near the limit", "x" * 5000)
        await sign_in(page, base, "avery")
        await page.goto(f"{base}/#/letters/{letter}")
        await saved(page)
        await page.locator(".letter-body p").first.click()
        await page.keyboard.press("Control+End")  # End: of the wrapped line
        await page.keyboard.insert_text("y" * 3000)  # past the limit in one edit
        refusal = page.locator(".refusal")
        await expect(refusal).to_be_visible()
        await expect(refusal).to_have_attribute("data-code", "4413")
        await expect(refusal).to_contain_text("read-only")
        await expect(page.locator(".letter-body")).to_have_attribute("contenteditable", "false")
        await page.locator(".letter-body").click()
        await page.keyboard.type("lost")
        assert "lost" not in await page.locator(".letter-body").inner_text()

        await refusal.get_by_role("button", name="Try again").click()  # refused again: too large
        await expect(refusal).to_contain_text("has reached the size")
        await expect(page.locator(".letter-body")).to_have_attribute("contenteditable", "false")

        # The operator raises the limit: trying again saves the refused edit, and typing is back.
        await gateway.stop(timeout=30)
        gateway = await start_stack(data_dir, port, secret, max_document_bytes="100000")
        await refusal.get_by_role("button", name="Try again").click()
        await expect(refusal).to_be_hidden()
        await page.locator(".letter-body p").first.click()
        await page.keyboard.press("Control+End")
        await page.keyboard.type(" Saved.")
        await saved(page)
        async with httpx.AsyncClient(base_url=base, headers=auth("avery", secret=secret)) as http:
            text = (await http.get(f"/v1/letters/{letter}")).json()["content"]
        assert text == "x" * 5000 + "y" * 3000 + " Saved."
    finally:
        await context.close()
        await gateway.stop(timeout=30)
