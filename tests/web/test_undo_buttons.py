"""The toolbar's Undo and Redo are enabled only when there is something of yours to undo or
redo (Yjs' undo stacks, y-tiptap's undo plugin): they were never disabled.

Against `steno-collab dev` in Debian's Chromium (the stack and browser fixtures of conftest.py).
"""

import pytest
from playwright.async_api import Browser, expect

from tests.web.browser import (
    REDO,
    UNDO,
    create_letter,
    open_letter,
    pages,
    saved,
    sign_in,
    type_at_end,
)


@pytest.mark.timeout(120)
async def test_undo_and_redo_are_enabled_only_with_something_to_undo_or_redo(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Undo buttons", "Dear Sir,\nThe terms follow.")
        undo, redo = avery.locator(UNDO), avery.locator(REDO)
        await expect(undo).to_be_disabled()  # the letter as created: nothing of hers to undo
        await expect(redo).to_be_disabled()

        # A colleague's edit is not hers to undo.
        await open_letter(parker, base_url, "parker", letter)
        await type_at_end(parker, " His words.")
        await expect(avery.locator(".letter-body")).to_contain_text("His words.")
        await expect(undo).to_be_disabled()

        await avery.locator(".letter-body p").first.click()
        await avery.keyboard.press("End")
        await avery.keyboard.type(" Hers.")
        await expect(undo).to_be_enabled()
        await expect(redo).to_be_disabled()

        await undo.click()
        await expect(avery.locator(".letter-body p").first).to_have_text("Dear Sir,")
        await expect(redo).to_be_enabled()  # filled after the undo's own transaction
        await expect(undo).to_be_disabled()

        await redo.click()
        await expect(avery.locator(".letter-body p").first).to_have_text("Dear Sir, Hers.")
        await expect(redo).to_be_disabled()
        await expect(undo).to_be_enabled()
        await saved(avery)
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
