"""The history panel opens an old version of a long letter against a short current text. The word
diff kept a copy of its search state per step: 9.5k words against "Short." blocked the tab for
14 s and took 1.8 GB; the 20k words here were not shown within the test's wait.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures).
"""

import httpx
from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import EDITABLE, new_page, saved
from tests.web.test_browser import STACK_SECRET, base_url, browser

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

WORDS = 20_000


def _as(user: str, role: str) -> dict[str, str]:
    token = mint_token(Settings(jwt_secret=STACK_SECRET), user, "demo-firm", role, user.title())
    return {"Authorization": f"Bearer {token}"}


async def test_an_old_version_of_a_long_letter_opens(base_url: str, browser: Browser) -> None:
    words = [f"w{n}" for n in range(WORDS)]
    long = "\n".join(" ".join(words[i : i + 100]) for i in range(0, WORDS, 100))
    async with httpx.AsyncClient(base_url=base_url, headers=_as("avery", "editor")) as http:
        body = {"firm_id": "demo-firm", "title": "Long", "content": long}
        created = await http.post("/v1/letters", json=body)
        assert created.status_code == 201, created.text
        letter = str(created.json()["letter_id"])
        saved_version = await http.post(f"/v1/letters/{letter}/versions", json={"label": "draft"})
        assert saved_version.status_code == 202, saved_version.text

    auditor = _as("audrey", "auditor")
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
        await page.keyboard.type("Short.")
        await expect(page.locator(".letter-body")).to_have_text("Short.")
        await saved(page)
    finally:
        await context.close()

    context, page = await new_page(browser)
    try:
        await page.goto(f"{base_url}/?as=audrey#/letters/{letter}")
        await expect(page.locator(".letter-body")).to_have_text("Short.")
        await page.click("role=tab[name='History']")
        await page.click("button:has-text('Version 1')")
        changes = page.locator(".version-text")
        await expect(changes.locator("ins")).to_have_text("Short.")
        removed = await changes.locator("del").all_text_contents()
        assert "".join(removed).split() == words
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
