"""A letter whose quote Avery commented on, open on Avery's and Parker's pages: the comment
undo tests' start (on a stack of tests/web/stacks.py)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import (
    STACK_SECRET,
    body_text,
    create_letter,
    open_letter,
    pages,
    sign_in,
)

LETTER = "Dear Sir,\nYes. The police report number 1011 says so.\nRegards."
QUOTE = "police report number 1011"
MARKS = ".letter-body .comment-anchor"


async def select_in_second_paragraph(page: Page, skip: int, length: int) -> None:
    """`length` characters of the second paragraph, `skip` from its start, by the keyboard."""
    await page.locator(".letter-body p").nth(1).click()
    await page.keyboard.press("Home")
    for _ in range(skip):
        await page.keyboard.press("ArrowRight")
    for _ in range(length):
        await page.keyboard.press("Shift+ArrowRight")


async def restored(page: Page) -> bool:
    """The page shows LETTER again."""
    return await body_text(page) == LETTER  # without the carets' name labels


@asynccontextmanager
async def commented(
    base_url: str, browser: Browser, title: str
) -> AsyncIterator[tuple[Page, Page, str]]:
    """Avery's and Parker's pages on a new letter whose QUOTE Avery has commented on, marked
    on both; and the letter's id."""
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, title, LETTER)
        await open_letter(parker, base_url, "parker", letter)
        await select_in_second_paragraph(avery, len("Yes. The "), len(QUOTE))
        await expect(avery.locator(".comment-target")).to_have_text(f"On: “{QUOTE}”")
        await avery.fill(".new-thread textarea", "Check this number")
        await avery.click("button:has-text('Comment on selection')")
        for page in (avery, parker):
            await expect(page.locator(MARKS)).to_have_text(QUOTE)
        yield avery, parker, letter


async def only_thread(base_url: str, letter: str) -> dict[str, Any]:
    """The letter's one thread, as the server lists it to Avery."""
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "avery", "demo-firm", name="Avery")
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        answer = await client.get(f"/v1/letters/{letter}/comments")
        answer.raise_for_status()
        (thread,) = answer.json()["threads"]
        return dict(thread)


async def shows(page: Page, text: str) -> bool:
    return await body_text(page) == text
