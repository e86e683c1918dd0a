"""A Lock click answered 503 while Redis's locks are being restored (after a wipe) waits out
the Retry-After before asking again: the status line says so meanwhile (it said nothing for
~5 s), and the lock is granted once restored (src/editor/locks.ts `waiting`, src/api.ts).

On tests/web/test_locks_restoring.py's `unrestored` stack (no restore by the gateway itself;
the test restores by hand), as tests/web/test_lost_unlocks.py.
"""

from playwright.async_api import Browser, expect

from tests.web.browser import FIRST_SECTION, open_letter, pages, post_letter
from tests.web.test_browser import browser
from tests.web.test_locks_restoring import Stack, restore_by_hand, unrestored

__all__ = ["browser", "unrestored"]  # the fixtures this module uses

# Retry-After is 5 s: the click's request is sent again then (up to 3 times).
WITHIN_MS = 12_000


async def test_a_lock_click_waiting_out_a_restore_says_so(
    unrestored: Stack, browser: Browser
) -> None:
    letter = await post_letter(unrestored.url, unrestored.secret, "Restoring click")
    async with pages(browser, 1) as (avery,):
        await open_letter(avery, unrestored.url, "avery", letter)
        await avery.locator(".letter-body p").first.click()
        await unrestored.redis.flushall()
        await avery.click("button.lock-toggle")
        status = avery.locator(".lock-status")
        await expect(status).to_have_text("Locks are being restored; trying again in 5 s.")
        await restore_by_hand(unrestored)
        rows = avery.locator(".lock-row")
        await expect(rows).to_have_text(
            [f"“{FIRST_SECTION}” Avery Attorney (you)"], timeout=WITHIN_MS
        )
        await expect(status).to_have_text(
            f"You locked “{FIRST_SECTION}” (renewed while this letter is open)."
        )
        assert avery.errors == []  # type: ignore[attr-defined]
