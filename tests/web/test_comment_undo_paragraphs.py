"""A colleague deletes whole paragraphs, one of them carrying a comment, and undoes it with
Ctrl+Z: the comment is back on its text on every page and in the server's answer. The
UndoManager puts back copies of the paragraph elements (on the other page and in the gateway
the deleted ones' content is garbage-collected): the anchors find the quote in the restored
paragraphs (gateway/collab/anchors.py `Resolver._reparented`, anchors.ts `reparented`).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from functools import partial

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import saved
from tests.web.commented import LETTER, MARKS, QUOTE, commented, only_thread, restored, shows


async def test_undoing_the_deletion_of_whole_paragraphs_brings_the_comment_back(
    base_url: str, browser: Browser
) -> None:
    async with commented(base_url, browser, "Undo paragraphs") as (avery, parker, letter):
        # Parker selects from the end of the first paragraph to the end of the letter: the
        # second (the comment's) and third paragraphs go whole.
        await parker.locator(".letter-body p").nth(0).click()
        await parker.keyboard.press("End")
        await parker.keyboard.press("Control+Shift+End")
        await parker.keyboard.press("Delete")
        await saved(parker)
        for page in (avery, parker):
            await eventually(partial(shows, page, LETTER.split("\n")[0]))
            await expect(page.locator(".thread.detached")).to_have_count(1)
        await parker.keyboard.press("Control+z")
        await saved(parker)

        at = LETTER.index(QUOTE)

        async def attached() -> bool:
            thread = await only_thread(base_url, letter)
            return not thread["detached"] and thread["anchor"]["from"] == at

        await eventually(attached)
        for page in (avery, parker):
            await eventually(partial(restored, page))
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
            await expect(page.locator(".thread.detached")).to_have_count(0)
        thread = await only_thread(base_url, letter)
        assert (thread["anchor"]["from"], thread["anchor"]["to"]) == (at, at + len(QUOTE))
        await avery.reload()
        await expect(avery.locator(MARKS)).to_have_text(QUOTE)
