"""A lock released by a page that goes away, whose release the gateway refused (503: Redis wiped,
its locks not restored yet), came back with the restore and stayed held for its TTL (5 min).
The page remembers the release until it sees its answer, and the user's next letter page sends
it again (src/editor/lost-unlocks.ts).

Against `steno-collab dev` in Debian's Chromium on a Redis of the test's own, without the
gateway's own restore (tests/web/test_locks_restoring.py's `unrestored` stack): the restore is
run by hand once the release was refused.
"""

from playwright.async_api import Browser, Page, expect

from tests.support import eventually
from tests.web.browser import (
    FIRST_SECTION,
    lock_first_paragraph,
    locks_refused,
    open_letter,
    pages,
    post_letter,
)
from tests.web.test_browser import browser
from tests.web.test_locks_restoring import Stack, restore_by_hand, unrestored

__all__ = ["browser", "unrestored"]  # the fixtures this module uses


async def refused_as_it_went(stack: Stack, page: Page) -> None:
    """Redis wiped, `page` goes away: its keepalive release refused (503), then the locks
    restored by hand (its lock held again)."""
    await stack.redis.flushall()
    before = await locks_refused(stack.url)
    await page.goto("about:blank")  # pagehide: the keepalive release, refused (503)
    await eventually(lambda: _is_more(stack, before), timeout=10, interval=0.1)
    assert "locks: 1 restored" in await restore_by_hand(stack)


async def _is_more(stack: Stack, before: float) -> bool:
    return await locks_refused(stack.url) > before


async def test_a_release_refused_as_the_page_went_is_sent_by_the_next_page(
    unrestored: Stack, browser: Browser
) -> None:
    letter = await post_letter(unrestored.url, unrestored.secret, "Left locked")
    other = await post_letter(unrestored.url, unrestored.secret, "Another")
    async with pages(browser, 2) as (avery, parker):
        await open_letter(avery, unrestored.url, "avery", letter)
        await lock_first_paragraph(avery)

        await refused_as_it_went(unrestored, avery)

        # Held again by the restore, as the log says: Parker sees it.
        await open_letter(parker, unrestored.url, "parker", letter)
        seen = parker.locator(".lock-row")
        await expect(seen).to_have_text([f"“{FIRST_SECTION}” Avery Attorney"])

        # Avery's next letter page (another letter) sends the release: gone for Parker at once.
        await open_letter(avery, unrestored.url, "avery", other)
        await expect(seen).to_have_count(0)
        stored = await avery.evaluate("() => Object.keys(localStorage)")
        assert not [key for key in stored if key.startswith("steno.unlocks.")], stored
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]


async def test_a_lock_taken_again_since_is_not_released(
    unrestored: Stack, browser: Browser
) -> None:
    """Another tab of hers locked the section since the release was remembered (a later
    deadline): that lock is hers to keep, and the remembered release is dropped unsent."""
    letter = await post_letter(unrestored.url, unrestored.secret, "Taken again")
    other = await post_letter(unrestored.url, unrestored.secret, "Elsewhere")
    async with pages(browser, 1) as (avery,):
        await open_letter(avery, unrestored.url, "avery", letter)
        rows = await lock_first_paragraph(avery)
        # An earlier tab's release, remembered with that lock's (earlier) deadline.
        await avery.evaluate(
            """([letter, section]) => localStorage.setItem('steno.unlocks.demo-firm.avery',
              JSON.stringify([{letter, section, expiresAt: Date.now() + 100_000}]))""",
            [letter, FIRST_SECTION],
        )
        second = await avery.context.new_page()  # her other tab, same browser storage
        await open_letter(second, unrestored.url, "avery", other)
        await second.wait_for_function(
            "() => localStorage.getItem('steno.unlocks.demo-firm.avery') === null"
        )
        await open_letter(second, unrestored.url, "avery", letter)
        await expect(second.locator(".lock-row")).to_have_text(
            [f"“{FIRST_SECTION}” Avery Attorney (you)"]
        )
        await expect(rows).to_have_text([f"“{FIRST_SECTION}” Avery Attorney (you)"])
