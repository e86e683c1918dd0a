"""A colleague deletes commented text (and more around it) and undoes it with Ctrl+Z: the comment
is back on its text, on every page and in the server's answer; after a redo and an undo again
too. Yjs' UndoManager restores copies of the deleted characters, which the anchors follow
(gateway/collab/anchors.py, anchors.ts).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import body_text, create_letter, open_letter, pages, saved, sign_in
from tests.web.test_browser import STACK_SECRET, base_url, browser

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

LETTER = "Dear Sir,\nYes. The police report number 1011 says so.\nRegards."
QUOTE = "police report number 1011"
MARKS = ".letter-body .comment-anchor"


async def _select(page: Page, skip: int, length: int) -> None:
    """`length` characters of the second paragraph, `skip` from its start, by the keyboard."""
    await page.locator(".letter-body p").nth(1).click()
    await page.keyboard.press("Home")
    for _ in range(skip):
        await page.keyboard.press("ArrowRight")
    for _ in range(length):
        await page.keyboard.press("Shift+ArrowRight")


async def _restored(page: Page) -> bool:
    return await body_text(page) == LETTER  # without the carets' name labels


@asynccontextmanager
async def _commented(
    base_url: str, browser: Browser, title: str
) -> AsyncIterator[tuple[Page, Page, str]]:
    """Avery's and Parker's pages on a new letter whose QUOTE Avery has commented on, marked
    on both; and the letter's id."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, title, LETTER)
        await open_letter(parker, base_url, "parker", letter)
        await _select(avery, len("Yes. The "), len(QUOTE))
        await expect(avery.locator(".comment-target")).to_have_text(f"On: “{QUOTE}”")
        await avery.fill(".new-thread textarea", "Check this number")
        await avery.click("button:has-text('Comment on selection')")
        for page in (avery, parker):
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
        yield avery, parker, letter


async def _thread(base_url: str, letter: str) -> dict[str, Any]:
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", name="Avery")
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        answer = await client.get(f"/v1/letters/{letter}/comments")
        answer.raise_for_status()
        (thread,) = answer.json()["threads"]
        return dict(thread)


async def test_undoing_the_deletion_of_commented_text_brings_the_comment_back(
    base_url: str, browser: Browser
) -> None:
    async with _commented(base_url, browser, "Undo a deletion") as (avery, parker, letter):
        # Parker deletes it with the words before it, then undoes that.
        await _select(parker, len("Yes. "), len("The " + QUOTE))
        await parker.keyboard.press("Backspace")
        await saved(parker)
        for page in (avery, parker):
            await expect(page.locator(".thread.detached")).to_have_count(1)
            await expect(page.locator(MARKS)).to_have_count(0)
        await parker.keyboard.press("Control+z")
        await saved(parker)

        for page in (avery, parker):
            await eventually(partial(_restored, page))
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
            await expect(page.locator(".thread.detached")).to_have_count(0)
        at = LETTER.index(QUOTE)

        async def attached() -> bool:
            thread = await _thread(base_url, letter)
            return not thread["detached"] and thread["anchor"]["from"] == at

        await eventually(attached)
        thread = await _thread(base_url, letter)
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
    async with _commented(base_url, browser, "Type before") as (avery, parker, letter):
        await _select(parker, len("Yes. The "), 0)
        await parker.keyboard.type("new ")
        await saved(parker)
        await _select(parker, len("Yes. The new "), len(QUOTE))
        await parker.keyboard.press("Backspace")
        await saved(parker)
        left = LETTER.replace(QUOTE, "new ")
        for page in (avery, parker):
            await eventually(partial(_shows, page, left))
            await expect(page.locator(".thread.detached")).to_have_count(1)
            await expect(page.locator(MARKS)).to_have_count(0)
        thread = await _thread(base_url, letter)
        assert thread["detached"], thread["anchor"]
        await avery.reload()
        await expect(avery.locator(".thread.detached")).to_have_count(1)
        await expect(avery.locator(MARKS)).to_have_count(0)


async def _shows(page: Page, text: str) -> bool:
    return await body_text(page) == text
