"""A commenter selects text with the keyboard and comments on it; nothing a reader types, pastes
or composes changes the letter (web/src/editor/read-only.ts).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Browser, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import (
    INSERT_AT_END,
    STACK_SECRET,
    TABLE_HTML,
    body_text,
    create_letter,
    pages,
    saved,
    sign_in,
    type_at_end,
)

LETTER = "Dear Sir,\nOur client was injured."
# The document as this page's editor holds it (TipTap keeps its editor on the editable element).
_DOC_TEXT = "() => document.querySelector('.letter-body').editor.getText({ blockSeparator: '\\n' })"
_PASTE = """() => {
  const data = new DataTransfer()
  data.setData('text/plain', 'pasted')
  data.setData('text/html', '<p>pasted</p>')
  const init = { clipboardData: data, bubbles: true, cancelable: true }
  const paste = new ClipboardEvent('paste', init)
  document.querySelector('.letter-body').dispatchEvent(paste)
}"""

_COUNT_INPUT = """() => {
  window.inputs = 0
  document.querySelector('.letter-body').addEventListener('input', () => window.inputs++)
}"""


async def _unchanged(page: Page, text: str) -> None:
    """The page's document is `text`, and so is what it shows (no stray text left in the DOM)."""

    async def same() -> bool:
        assert (await page.evaluate(_DOC_TEXT), await body_text(page)) == (text, text)
        return True

    await eventually(same, timeout=10)  # ProseMirror may redraw after a composition on a timer


@asynccontextmanager
async def _opened(
    browser: Browser, base_url: str, reader: str, title: str, content: str, html: str = ""
) -> AsyncIterator[tuple[Page, Page, str]]:
    """Avery's new letter (`content`, then `html` inserted at its end), open on `reader`'s page
    too, both saved: (avery's page, the reader's, the letter's id)."""
    async with pages(browser, 2) as (avery, reading):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, title, content)
        if html:
            await avery.evaluate(INSERT_AT_END, html)
            await saved(avery)
        await reading.goto(f"{base_url}/?as={reader}#/letters/{letter}")
        await saved(reading)
        yield avery, reading, letter


async def test_a_commenter_selects_with_keys_comments_and_cannot_change_the_letter(
    base_url: str, browser: Browser
) -> None:
    async with _opened(browser, base_url, "casey", "Keyboard review", LETTER) as opened:
        avery, casey, letter = opened
        body = casey.locator(".letter-body")
        await expect(body).to_have_attribute("aria-readonly", "true")

        # From the keyboard alone: into the letter, the second paragraph, five characters.
        await body.focus()
        await casey.keyboard.press("Control+Home")
        await casey.keyboard.press("ArrowDown")
        await casey.keyboard.press("Home")
        for _ in range(5):
            await casey.keyboard.press("Shift+ArrowRight")
        await expect(casey.locator(".comment-target")).to_have_text("On: “Our c”")

        # Whatever a reader presses, pastes or composes, on that selection or at a caret. The
        # browser puts none of it in the DOM first (an "input" event would say it did), IME
        # composition excepted: that cannot be cancelled, ProseMirror draws the letter again.
        await casey.evaluate(_COUNT_INPUT)
        for key in ["x", "Backspace", "Delete", "Enter"]:
            await casey.keyboard.press(key)
        # Nor are these "typing" to the others (published on the key, at once).
        assert await casey.locator(".users [data-name='Casey Commenter'] .status").inner_text() != (
            "typing"
        )
        for key in ["Control+b", "Control+x"]:
            await casey.keyboard.press(key)
        await _unchanged(casey, LETTER)
        await casey.evaluate(_PASTE)
        await _unchanged(casey, LETTER)
        await casey.keyboard.press("End")
        await casey.keyboard.insert_text("inserted")
        await _unchanged(casey, LETTER)
        assert await casey.evaluate("() => window.inputs") == 0
        cdp = await casey.context.new_cdp_session(casey)
        await cdp.send(
            "Input.imeSetComposition", {"text": "かな", "selectionStart": 2, "selectionEnd": 2}
        )
        await cdp.send("Input.insertText", {"text": "仮名"})
        await _unchanged(casey, LETTER)
        for key in ["Control+z", "Control+y", "Control+Shift+z"]:
            await casey.keyboard.press(key)
        await _unchanged(casey, LETTER)

        # The selection made with keys is what the comment is about.
        await casey.keyboard.press("Home")
        for _ in range(5):
            await casey.keyboard.press("Shift+ArrowRight")
        await expect(casey.locator(".comment-target")).to_have_text("On: “Our c”")
        await casey.fill(".new-thread textarea", "Which client?")
        await casey.click("button:has-text('Comment on selection')")
        await expect(casey.locator(".thread .quote")).to_have_text("“Our c”")

        # An editor still types, the commenter sees it; the server has her text alone.
        await type_at_end(avery, " Noted.")
        await saved(avery)
        await expect(body).to_contain_text("injured. Noted.")
        await saved(casey)  # nothing of this page's waits for the server
        assert (await casey.evaluate(_DOC_TEXT), await body_text(casey)) == (
            LETTER + " Noted.",
        ) * 2
        assert await casey.locator(".refusal").is_hidden()

        token = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", "editor")
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            assert (await http.get(f"/v1/letters/{letter}")).json()["content"] == (
                LETTER + " Noted."
            )
            (thread,) = (await http.get(f"/v1/letters/{letter}/comments")).json()["threads"]
        anchor = thread["anchor"]
        assert (anchor["from"], anchor["to"], anchor["quote"]) == (10, 15, "Our c")
        assert avery.errors == [] and casey.errors == []  # type: ignore[attr-defined]


TASKS_LIST_TABLE = (
    '<ul data-type="taskList"><li data-type="taskItem" data-checked="false"><p>todo</p></li></ul>'
    "<ul><li><p>one</p></li><li><p>two</p></li></ul>"
    "<table><tbody><tr><td><p>a1</p></td><td><p>b1</p></td></tr></tbody></table>"
)
_DOC = "() => JSON.stringify(document.querySelector('.letter-body').editor.getJSON())"
_ON_LETTER = "() => document.activeElement.matches('.letter-body')"


async def test_a_commenter_ticks_no_task_and_tabs_out_of_lists_and_tables(
    base_url: str, browser: Browser
) -> None:
    opening = _opened(browser, base_url, "casey", "Tasks review", "Dear Sir,", TASKS_LIST_TABLE)
    async with opening as opened:
        avery, casey, _ = opened
        document = await casey.evaluate(_DOC)

        # A reader's click (on the box, on its label) ticks nothing: the box shows the document.
        box = casey.locator(".letter-body input[type=checkbox]")
        label = casey.locator(".letter-body label:has(input[type=checkbox])")
        for click in (box.click, label.click, lambda: box.press("Space")):
            await click()
            assert not await box.is_checked()
        assert await casey.evaluate(_DOC) == document

        # Tab moves the focus on from a list item and from a table's last cell, as from a paragraph
        # (the keymaps would claim it for a command refused here): to the next control, here the
        # task's box (in the letter's element, after it); Shift+Tab back.
        for target in ("li:has-text('two')", "td:has-text('b1')"):
            await casey.locator(f".letter-body {target}").click()
            await casey.keyboard.press("End")
            await casey.keyboard.press("Tab")
            assert not await casey.evaluate(_ON_LETTER), target
            await casey.locator(f".letter-body {target}").click()
            await casey.keyboard.press("Shift+Tab")
            assert not await casey.evaluate(_ON_LETTER), target
        assert await casey.evaluate(_DOC) == document

        # An editor's tick still counts, and the reader's box follows it.
        await avery.locator(".letter-body input[type=checkbox]").click()
        await expect(avery.locator(".letter-body input[type=checkbox]")).to_be_checked()
        await expect(box).to_be_checked()
        assert avery.errors == [] and casey.errors == []  # type: ignore[attr-defined]


# Where the focus is against the letter: after it, before it (outside), or in it.
_FOCUS = """() => {
  const letter = document.querySelector('.letter-body')
  const position = letter.compareDocumentPosition(document.activeElement)
  if (position === Node.DOCUMENT_POSITION_FOLLOWING) return 'after'
  return position === Node.DOCUMENT_POSITION_PRECEDING ? 'before' : 'in'
}"""


async def test_a_viewer_tabs_out_of_any_cell_both_ways_and_no_key_of_hers_is_typing(
    base_url: str, browser: Browser
) -> None:
    """Tab and Shift+Tab leave a reader's letter, forward and back, from every cell of a table as
    from a paragraph (read-only.ts); an editor's would move between cells. No key a reader presses
    shows her as typing, Ctrl+C and Ctrl+A included (presence.ts)."""
    async with _opened(
        browser, base_url, "vera", "Table review", "Dear Sir,", TABLE_HTML
    ) as opened:
        avery, vera, _ = opened
        document = await vera.evaluate(_DOC)

        cells = [f"td:has-text('{cell}')" for cell in ("a1", "b1", "a2", "b2")]
        for block in ["p:has-text('Dear Sir')", *cells]:
            for key, where in (("Tab", "after"), ("Shift+Tab", "before")):
                await vera.locator(f".letter-body {block}").click()
                await vera.keyboard.press(key)
                assert await vera.evaluate(_FOCUS) == where, (block, key)
        assert await vera.evaluate(_DOC) == document

        # Her own status is published on the key, at once.
        status = vera.locator(".users [data-name='Vera Viewer'] .status")
        await vera.locator(".letter-body td:has-text('a2')").click()
        for key in ["Control+c", "Control+a", "Control+v", "Control+z", "Control+b", "x", "Enter"]:
            await vera.keyboard.press(key)
            assert await status.inner_text() == "active", key
        assert await vera.evaluate(_DOC) == document
        assert avery.errors == [] and vera.errors == []  # type: ignore[attr-defined]
