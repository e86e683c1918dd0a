"""A writer's session ends (the token expires, no host page renews it) and the letter goes
read-only (refusal.ts): the whole toolbar is disabled then, Undo and Redo though the undo stacks
still hold the writer's steps. They stayed enabled, and Bold or a list still changed the page's
copy of the letter, which the server no longer took.

Against `steno-collab dev` in Debian's Chromium (conftest.py's browser, session_end.py's stack).
"""

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.web.browser import (
    EDITABLE,
    REDO,
    STACK_SECRET,
    UNDO,
    new_page,
    post_letter,
    saved,
    stack_token,
)
from tests.web.session_end import SHORT_TTLS_S, base_url, before_expiry

# The stack with no JWT leeway (a session ends at its token's expiry), over conftest.py's.
__all__ = ["base_url"]

# Ends the undo step being typed (as a pause in typing does): the next keys are a step of their own.
_STOP_CAPTURING = """() => {
  const editor = document.querySelector('.letter-body').editor
  const states = editor.state.plugins.map((plugin) => plugin.getState(editor.state))
  states.find((state) => state && state.undoManager).undoManager.stopCapturing()
}"""


@pytest.mark.timeout(120)
async def test_undo_and_redo_are_disabled_once_the_session_ends(
    base_url: str, browser: Browser
) -> None:
    opened: list[BrowserContext] = []

    async def attempt(ttl_s: int) -> Page:
        letter = await post_letter(base_url, STACK_SECRET, "Undo expiring")  # "Dear Sir,"...
        writer, page = await new_page(browser)
        opened.append(writer)
        token = stack_token("parker", ttl_s=ttl_s)
        await page.goto(f"{base_url}/?token={token}#/letters/{letter}")
        await page.wait_for_selector(EDITABLE)
        await page.locator(".letter-body p").first.click()
        await page.keyboard.press("End")
        await page.keyboard.type(" One.")
        await page.evaluate(_STOP_CAPTURING)
        await page.keyboard.type(" Two.")
        await page.locator(UNDO).click()
        await expect(page.locator(".letter-body p").first).to_have_text("Dear Sir, One.")
        await saved(page)
        # A step to undo and one to redo, while the session lasts.
        await expect(page.locator(UNDO)).to_be_enabled()
        await expect(page.locator(REDO)).to_be_enabled()
        return page

    try:
        page = await before_expiry(attempt)
        undo, redo = page.locator(UNDO), page.locator(REDO)
        refusal = page.locator(".refusal[data-code='4401']")
        await expect(refusal).to_be_visible(timeout=(SHORT_TTLS_S[-1] + 20) * 1000)
        await expect(page.locator(".letter-body")).to_have_attribute("contenteditable", "false")
        await expect(undo).to_be_disabled()
        await expect(redo).to_be_disabled()
        toolbar = page.locator(".toolbar button")
        assert await toolbar.count() == 7
        for index in range(7):
            await expect(toolbar.nth(index)).to_be_disabled()
        await expect(page.locator(".letter-body p").first).to_have_text("Dear Sir, One.")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        for opened_context in opened:
            await opened_context.close()
