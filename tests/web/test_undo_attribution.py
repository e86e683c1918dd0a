"""Whose characters a keystroke makes, where a colleague's identical character is next to the
caret: y-tiptap diffs the paragraph's old and new text, and without the caret it credits the
typed character to the place of the last equal one (Parker's "x" typed before Avery's "x" became
the one after it). Avery's Ctrl+Z then took the "x" at Parker's place: his "xy" read "yx".

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from playwright.async_api import Browser, Page

from tests.support import eventually
from tests.web.browser import block_text, create_letter, open_letter, pages, saved, sign_in


async def _shows(page: Page, text: str) -> bool:
    """The letter's second paragraph reads `text` (carets' labels aside)."""
    shown = await block_text(page.locator(".letter-body p").nth(1))
    assert shown == text, shown
    return True


async def test_an_undo_takes_only_the_characters_its_author_typed(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Attribution", "Dear Sir,\nWe represent Ms Smith.")
        await open_letter(parker, base_url, "parker", letter)
        await avery.locator(".letter-body p").nth(1).click()
        await avery.keyboard.press("End")
        await avery.keyboard.type("x")
        await saved(avery)
        await eventually(lambda: _shows(parker, "We represent Ms Smith.x"))

        # Parker's caret just before Avery's "x"; he types an "x" of his own there, then "y".
        await parker.locator(".letter-body p").nth(1).click()
        await parker.keyboard.press("End")
        await parker.keyboard.press("ArrowLeft")
        await parker.keyboard.type("xy")
        await saved(parker)
        await eventually(lambda: _shows(avery, "We represent Ms Smith.xyx"))

        # Avery takes back her "x" (the last one): Parker's "xy" stays as he typed it.
        await avery.keyboard.press("Control+z")
        await saved(avery)
        await eventually(lambda: _shows(parker, "We represent Ms Smith.xy"))
        assert await _shows(avery, "We represent Ms Smith.xy")
