"""A lock released by a page that goes away, whose release the gateway refused (503: Redis wiped,
its locks not restored yet), came back with the restore and stayed held for its TTL (5 min).
The page remembers the release until it sees its answer, and the user's next letter page sends
it again (src/editor/lost-unlocks.ts).

Against `steno-collab dev` in Debian's Chromium on a Redis of the test's own, without the
gateway's own restore (tests/web/test_locks_restoring.py's `unrestored` stack): the restore is
run by hand once the release was refused.
"""

import re

import httpx
from playwright.async_api import Browser, expect

from gateway.auth import mint_token
from schemas.settings import Settings
from tests.support import eventually
from tests.web.browser import open_letter, pages
from tests.web.test_browser import browser
from tests.web.test_locks_restoring import Stack, restore_by_hand, unrestored

__all__ = ["browser", "unrestored"]  # the fixtures this module uses

SECTION = "paragraph 1"


async def _letter(stack: Stack, title: str) -> str:
    token = mint_token(Settings(jwt_secret=stack.secret), "avery", "demo-firm", "editor", "Avery")
    async with httpx.AsyncClient(base_url=stack.url) as http:
        body = {"firm_id": "demo-firm", "title": title, "content": "Dear Sir,\nTerms."}
        created = await http.post(
            "/v1/letters", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201, created.text
        return str(created.json()["letter_id"])


async def _refusals(stack: Stack) -> float:
    """The gateway's `gateway_locks_unrestored_found`: one per 503 of its gates."""
    async with httpx.AsyncClient(base_url=stack.url) as http:
        text = (await http.get("/metrics")).text
    found = re.search(r"^gateway_locks_unrestored_found_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_release_refused_as_the_page_went_is_sent_by_the_next_page(
    unrestored: Stack, browser: Browser
) -> None:
    letter = await _letter(unrestored, "Left locked")
    other = await _letter(unrestored, "Another")
    async with pages(browser, 2) as (avery, parker):
        await open_letter(avery, unrestored.url, "avery", letter)
        await avery.locator(".letter-body p").first.click()
        await avery.click("button.lock-toggle")
        rows = avery.locator(".lock-row")
        await expect(rows).to_have_text([f"“{SECTION}” Avery Attorney (you)"])

        await unrestored.redis.flushall()
        before = await _refusals(unrestored)
        await avery.goto("about:blank")  # pagehide: the keepalive release, refused (503)
        await eventually(lambda: _is_more(unrestored, before), timeout=10, interval=0.1)
        assert "locks: 1 restored" in await restore_by_hand(unrestored)

        # Held again by the restore, as the log says: Parker sees it.
        await open_letter(parker, unrestored.url, "parker", letter)
        seen = parker.locator(".lock-row")
        await expect(seen).to_have_text([f"“{SECTION}” Avery Attorney"])

        # Avery's next letter page (another letter) sends the release: gone for Parker at once.
        await open_letter(avery, unrestored.url, "avery", other)
        await expect(seen).to_have_count(0)
        stored = await avery.evaluate("() => Object.keys(localStorage)")
        assert not [key for key in stored if key.startswith("steno.unlocks.")], stored
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def _is_more(stack: Stack, before: float) -> bool:
    return await _refusals(stack) > before


async def test_a_lock_taken_again_since_is_not_released(
    unrestored: Stack, browser: Browser
) -> None:
    """Another tab of hers locked the section since the release was remembered (a later
    deadline): that lock is hers to keep, and the remembered release is dropped unsent."""
    letter = await _letter(unrestored, "Taken again")
    other = await _letter(unrestored, "Elsewhere")
    async with pages(browser, 1) as (avery,):
        await open_letter(avery, unrestored.url, "avery", letter)
        await avery.locator(".letter-body p").first.click()
        await avery.click("button.lock-toggle")
        rows = avery.locator(".lock-row")
        await expect(rows).to_have_text([f"“{SECTION}” Avery Attorney (you)"])
        # An earlier tab's release, remembered with that lock's (earlier) deadline.
        await avery.evaluate(
            """([letter, section]) => localStorage.setItem('steno.unlocks.demo-firm.avery',
              JSON.stringify([{letter, section, expiresAt: Date.now() + 100_000}]))""",
            [letter, SECTION],
        )
        second = await avery.context.new_page()  # her other tab, same browser storage
        await open_letter(second, unrestored.url, "avery", other)
        await second.wait_for_function(
            "() => localStorage.getItem('steno.unlocks.demo-firm.avery') === null"
        )
        await open_letter(second, unrestored.url, "avery", letter)
        await expect(second.locator(".lock-row")).to_have_text(
            [f"“{SECTION}” Avery Attorney (you)"]
        )
        await expect(rows).to_have_text([f"“{SECTION}” Avery Attorney (you)"])
