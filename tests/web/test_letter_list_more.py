"""The letter list past the server's first page: `GET /v1/letters` answers the newest 100 and
names the next page in `X-Next-Cursor`; a "Show more letters" button under the list appends it
(each letter once), with a busy state and an error line a retry clears. The letters this
browser opened stay on top, once each.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

import asyncio
import json
import re

import httpx
from playwright.async_api import Browser, Route, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.web.browser import STACK_SECRET, new_page, shot
from tests.web.stacks import own_base_url

# A stack of this module's own (it asserts firm- or user-wide state): stacks.py's own_base_url
__all__ = ["own_base_url"]

LETTERS = 105  # the server's page is 100
NEXT_PAGE = re.compile(r"/v1/letters\?(.*&)?after=")


async def _create_letters(base_url: str) -> list[str]:
    """LETTERS letters of the demo firm, "Letter 001" first; their ids in that order. A service
    token has no request budget: a hundred creations in a row are not refused."""
    token = mint_token(Settings(jwt_secret=STACK_SECRET), "backend", "demo-firm", "service", "B")
    ids: list[str] = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for n in range(1, LETTERS + 1):
            body = {"firm_id": "demo-firm", "title": f"Letter {n:03}"}
            created = await http.post("/v1/letters", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["letter_id"])
    return ids


async def test_show_more_letters_appends_the_next_page_once_each(
    base_url: str, browser: Browser
) -> None:
    ids = await _create_letters(base_url)
    # The oldest letter, on the second page, was opened in this browser before.
    remembered = [{"letter_id": ids[0], "title": "Letter 001", "opened_at": 1_700_000_000_000}]
    asked: list[str] = []
    release = asyncio.Event()

    async def next_page(route: Route) -> None:
        asked.append(route.request.url)
        if len(asked) == 1:  # the first try fails
            await route.fulfill(status=500, json={"detail": "boom"})
            return
        await release.wait()  # the test looks at the busy state meanwhile
        response = await route.fetch()
        data = await response.json()
        # A letter of the first page again (it moved between the requests): shown once.
        data["letters"].insert(
            0, {"letter_id": ids[5], "firm_id": "demo-firm", "title": "Letter 006"}
        )
        await route.fulfill(response=response, body=json.dumps(data))

    context, page = await new_page(browser)
    try:
        await context.add_init_script(
            f"localStorage.setItem('steno.recent.demo-firm', {json.dumps(json.dumps(remembered))})"
        )
        await page.route(NEXT_PAGE, next_page)
        await page.goto(f"{base_url}/?as=avery")
        rows = page.locator(".letter-list li")
        links = page.locator(".letter-list a")
        more = page.get_by_role("button", name="Show more letters")
        error = page.locator(".letters-page section p.error")

        # The newest 100 from the server, after the remembered letter.
        await expect(rows).to_have_count(101)
        await expect(links.first).to_have_text("Letter 001")
        await expect(rows.first).to_contain_text("opened")
        await expect(links.nth(1)).to_have_text("Letter 105")
        await expect(links.last).to_have_text("Letter 006")
        await expect(more).to_be_visible()
        await shot(page, "letters-first-page")

        # Reached by the keyboard from the last letter; a failure says so and keeps the button.
        await links.last.focus()
        await page.keyboard.press("Tab")
        await expect(more).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(error).to_have_text(re.compile(r"^Could not load more letters \(boom\)"))
        await expect(more).to_be_visible()
        await expect(more).to_be_focused()
        await expect(rows).to_have_count(101)

        # Again: busy while the page comes, then the rest of the letters, each once.
        await page.keyboard.press("Enter")
        busy = page.locator("button.more-letters")
        await expect(busy).to_have_attribute("aria-disabled", "true")
        await expect(busy).to_have_text("Loading more letters…")
        await expect(page.locator(".letter-list")).to_have_attribute("aria-busy", "true")
        release.set()
        await expect(rows).to_have_count(LETTERS)
        await expect(busy).to_be_hidden()
        await expect(error).to_be_empty()
        titles = await links.all_inner_texts()
        assert titles == ["Letter 001"] + [f"Letter {n:03}" for n in range(LETTERS, 1, -1)]
        # The keyboard goes on from the first letter the page brought.
        await expect(page.get_by_role("link", name="Letter 005")).to_be_focused()
        await shot(page, "letters-all-pages")

        assert len(asked) == 2
        assert asked[0] == asked[1]  # the retry asks for the same page
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
