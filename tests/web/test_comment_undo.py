"""A colleague deletes commented text (and more around it) and undoes it with Ctrl+Z: the comment
is back on its text, on every page and in the server's answer; after a redo and an undo again
too. Yjs' UndoManager restores copies of the deleted characters, which the anchors follow
(gateway/collab/anchors.py, anchors.ts).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from functools import partial

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import saved
from tests.web.commented import (
    LETTER,
    MARKS,
    QUOTE,
    commented,
    only_thread,
    restored,
    select_in_second_paragraph,
    shows,
)


async def test_undoing_the_deletion_of_commented_text_brings_the_comment_back(
    base_url: str, browser: Browser
) -> None:
    async with commented(base_url, browser, "Undo a deletion") as (avery, parker, letter):
        # Parker deletes it with the words before it, then undoes that.
        await select_in_second_paragraph(parker, len("Yes. "), len("The " + QUOTE))
        await parker.keyboard.press("Backspace")
        await saved(parker)
        for page in (avery, parker):
            await expect(page.locator(".thread.detached")).to_have_count(1)
            await expect(page.locator(MARKS)).to_have_count(0)
        await parker.keyboard.press("Control+z")
        await saved(parker)

        for page in (avery, parker):
            await eventually(partial(restored, page))
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
            await expect(page.locator(".thread.detached")).to_have_count(0)
        at = LETTER.index(QUOTE)

        async def attached() -> bool:
            thread = await only_thread(base_url, letter)
            return not thread["detached"] and thread["anchor"]["from"] == at

        await eventually(attached)
        thread = await only_thread(base_url, letter)
        assert (thread["anchor"]["from"], thread["anchor"]["to"]) == (at, at + len(QUOTE))
        assert thread["anchor"]["open_end"] is False
        await avery.reload()
        await expect(avery.locator(MARKS)).to_have_text(QUOTE)

        # Redo deletes the restored copies; undo again restores copies of those.
        await parker.keyboard.press("Control+Shift+z")
        await saved(parker)
        for page in (avery, parker):
            await expect(page.locator(".thread.detached")).to_have_count(1)
        await parker.keyboard.press("Control+z")
        await saved(parker)
        for page in (avery, parker):
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
            await expect(page.locator(".thread.detached")).to_have_count(0)


async def test_text_typed_before_commented_text_is_not_taken_for_it(
    base_url: str, browser: Browser
) -> None:
    """Typed just before the commented text, "new " has its first character as right origin, as
    an UndoManager copy has: deleting the commented text leaves the thread detached (it was
    marked on "new ", the server answering it attached there)."""
    async with commented(base_url, browser, "Type before") as (avery, parker, letter):
        await select_in_second_paragraph(parker, len("Yes. The "), 0)
        await parker.keyboard.type("new ")
        await saved(parker)
        await select_in_second_paragraph(parker, len("Yes. The new "), len(QUOTE))
        await parker.keyboard.press("Backspace")
        await saved(parker)
        left = LETTER.replace(QUOTE, "new ")
        for page in (avery, parker):
            await eventually(partial(shows, page, left))
            await expect(page.locator(".thread.detached")).to_have_count(1)
            await expect(page.locator(MARKS)).to_have_count(0)
        thread = await only_thread(base_url, letter)
        assert thread["detached"], thread["anchor"]
        await avery.reload()
        await expect(avery.locator(".thread.detached")).to_have_count(1)
        await expect(avery.locator(MARKS)).to_have_count(0)
