"""The history panel opens an old version against the current text as a word diff. A long letter's
old version against a short current text once blocked the tab (9.5k words against "Short.": 14 s
and 1.8 GB; the 20k words here were not shown within the test's wait); a diff too costly for its
time budget shows the texts removed and added whole instead.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Browser, Page, expect

from tests.support import eventually
from tests.web.browser import EDITABLE, auth, new_page, saved

WORDS = 20_000


def _lines(words: list[str]) -> str:
    return "\n".join(" ".join(words[i : i + 100]) for i in range(0, len(words), 100))


@asynccontextmanager
async def _version_against(
    base_url: str, browser: Browser, old: str, current: str
) -> AsyncIterator[Page]:
    """A letter saved as version 1 with `old`, then edited to `current` (one paragraph), opened
    in the history panel of an auditor's page."""
    async with httpx.AsyncClient(base_url=base_url, headers=auth("avery", "editor")) as http:
        body = {"firm_id": "demo-firm", "title": "Long", "content": old}
        created = await http.post("/v1/letters", json=body)
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        saved_version = await http.post(f"/v1/letters/{letter}/versions", json={"label": "draft"})
        assert saved_version.status_code == 202, saved_version.text

    auditor = auth("audrey", "auditor")
    async with httpx.AsyncClient(base_url=base_url, headers=auditor) as http:

        async def listed() -> bool:
            answer = await http.get(f"/v1/letters/{letter}/versions")
            return answer.status_code == 200 and "draft" in answer.text

        await eventually(listed, timeout=30, interval=0.2)

    context, page = await new_page(browser)
    try:
        await page.goto(f"{base_url}/?as=avery#/letters/{letter}")
        await page.wait_for_selector(EDITABLE)
        await page.locator(".letter-body p").first.click()
        await page.keyboard.press("Control+a")
        await page.keyboard.insert_text(current)
        await expect(page.locator(".letter-body")).to_have_text(current)
        await saved(page)
    finally:
        await context.close()

    context, page = await new_page(browser)
    try:
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await expect(page.locator(".letter-body")).to_have_text(current)
        await page.click("role=tab[name='History']")
        await page.click("button:has-text('Version 1')")
        yield page
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_a_version_shows_the_words_removed_and_added_since(
    base_url: str, browser: Browser
) -> None:
    old, current = "The quick brown fox", "The slow brown fox jumps"
    async with _version_against(base_url, browser, old, current) as page:
        changes = page.locator(".version-text")
        await expect(changes).to_have_text("The quick slow brown fox jumps")
        assert await changes.locator("del").all_text_contents() == [" quick"]
        assert await changes.locator("ins").all_text_contents() == [" slow", " jumps"]


async def test_an_old_version_of_a_long_letter_opens(base_url: str, browser: Browser) -> None:
    words = [f"w{n}" for n in range(WORDS)]
    async with _version_against(base_url, browser, _lines(words), "Short.") as page:
        changes = page.locator(".version-text")
        await expect(changes.locator("ins")).to_have_text("Short.")
        removed = await changes.locator("del").all_text_contents()
        assert "".join(removed).split() == words


async def test_a_diff_over_its_budget_shows_the_changed_middle_whole(
    base_url: str, browser: Browser
) -> None:
    """Every other word changed but the first and last: ~20k edits, hundreds of millions of steps
    (minutes and gigabytes without the budget). Given up on, the middle shows removed and added
    whole, between the unchanged ends."""
    words = [f"w{n}" for n in range(WORDS)]
    rewritten = [f"x{n}" if n % 2 and n < WORDS - 1 else word for n, word in enumerate(words)]
    async with _version_against(base_url, browser, _lines(words), " ".join(rewritten)) as page:
        changes = page.locator(".version-text")
        await expect(changes.locator("ins")).to_have_count(1)
        # The same ends: w0 before x1 and the last two (x is every other word from w1 on).
        assert (await changes.locator("ins").inner_text()).split() == rewritten[1:-2]
        assert (await changes.locator("del").inner_text()).split() == words[1:-2]
        shown = (await changes.inner_text()).split()
        assert shown[:1] + shown[-2:] == words[:1] + words[-2:]
