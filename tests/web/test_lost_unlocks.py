"""A lock released by a page that goes away, whose release the gateway refused (503: Redis wiped,
its locks not restored yet), came back with the restore and stayed held for its TTL (5 min).
The page remembers the release until it sees its answer, and the user's next letter page sends
it again, and so does a page of that user already open on the letter in another tab
(src/editor/lost-unlocks.ts).

Against `steno-collab dev` in Debian's Chromium on a Redis of the test's own, without the
gateway's own restore (tests/web/stacks.py's `unrestored` stack): the restore is
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
from tests.web.stacks import Stack, avery_on_a_letter, restore_by_hand, unrestored

__all__ = ["unrestored"]  # the fixtures this module uses


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


# The open tab asks its list again every Retry-After (5 s) while the locks are being restored.
OPEN_TAB_WITHIN_MS = 15_000


async def test_a_release_refused_as_a_tab_went_is_sent_by_the_users_open_tab(
    unrestored: Stack, browser: Browser
) -> None:
    """A release refused as a tab went while the same user still has the letter open in another
    tab: that open tab sends it again once the restore is done, not only a NEW letter page (it
    waited for one: the lock stayed up for its TTL, 5 min). The open tab hears the release
    remembered (`storage` event), reads its lock list, waits out the restore's 503s, and sends
    what is left (src/editor/lost-unlocks.ts, same-deadline rule kept)."""
    async with avery_on_a_letter(unrestored, browser, "Two tabs", 2) as (letter, (avery, parker)):
        second = await avery.context.new_page()  # her other tab, same browser storage
        errors: list[str] = []
        second.on("pageerror", lambda error: errors.append(str(error)))
        await open_letter(second, unrestored.url, "avery", letter)
        await lock_first_paragraph(avery)
        mine = f"“{FIRST_SECTION}” Avery Attorney (you)"
        await expect(second.locator(".lock-row")).to_have_text([mine])

        await refused_as_it_went(unrestored, avery)

        # Her open tab sends the release: gone for Parker (who opened the letter since).
        await open_letter(parker, unrestored.url, "parker", letter)
        seen = parker.locator(".lock-row")
        await expect(seen).to_have_count(0, timeout=OPEN_TAB_WITHIN_MS)
        await expect(second.locator(".lock-row")).to_have_count(0)
        stored = await second.evaluate("() => Object.keys(localStorage)")
        assert not [key for key in stored if key.startswith("steno.unlocks.")], stored
        assert errors == [] and avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
