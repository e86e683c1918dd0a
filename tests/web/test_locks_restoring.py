"""The locks panel while Redis's locks are being restored after a wipe: the listing answers 503
with Retry-After (gateway/collab/locks.py `held`) until they are restored from the log. The
page said "Could not load locks: <the operator's detail>" and never asked again (or, with the
request's own retries, showed nothing of it); now it says they are being restored, asks again
after Retry-After, and shows the lock once restored. A Lock click meeting that 503 says so too.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py, but on a Redis of
the test's own (FLUSHALL takes every database), with STENO_LOCKS_AUTO_RESTORE=false and the
restore run by hand (`steno-collab backfill locks`): the gateway's own restore (woken by the
first 503, or its check every 10 s) could come before the page's listing (a CI run's failure).
"""

from playwright.async_api import Browser, expect

from tests.web.browser import FIRST_SECTION, open_letter
from tests.web.stacks import (
    Stack,
    avery_on_a_letter,
    restore_by_hand,
    unrestored,
)

__all__ = ["unrestored"]  # the fixtures this module uses

RESTORE_WITHIN_MS = 30_000  # a retry 5 s after the 503; a slow machine may need another


async def test_the_locks_panel_waits_for_the_restore_and_then_shows_the_lock(
    unrestored: Stack, browser: Browser
) -> None:
    async with avery_on_a_letter(unrestored, browser, "Wiped", locked=True) as (letter, (page,)):
        rows = page.locator(".lock-row")
        await expect(rows).to_have_text([f"“{FIRST_SECTION}” Parker"])

        await unrestored.redis.flushall()
        await open_letter(page, unrestored.url, "avery", letter)  # the page opened again
        status = page.locator(".lock-status")
        await expect(status).to_have_text("Locks are being restored; checking again in 5 s.")
        await expect(page.locator(".lock-list li")).to_have_text(
            ["Not known until the locks are restored."]
        )
        assert "locks: 1 restored" in await restore_by_hand(unrestored)
        await expect(rows).to_have_text([f"“{FIRST_SECTION}” Parker"], timeout=RESTORE_WITHIN_MS)
        await expect(status).to_be_empty()


# Retry-After is 5 s: the click's request is sent again then (up to 3 times).
CLICK_WITHIN_MS = 12_000


async def test_a_lock_click_waiting_out_a_restore_says_so(
    unrestored: Stack, browser: Browser
) -> None:
    """A Lock click answered 503 while Redis's locks are being restored (after a wipe) waits out
    the Retry-After before asking again: the status line says so meanwhile (it said nothing for
    ~5 s), and the lock is granted once restored (src/editor/locks.ts `waiting`, src/api.ts)."""
    async with avery_on_a_letter(unrestored, browser, "Restoring click") as (_, (avery,)):
        await avery.locator(".letter-body p").first.click()
        await unrestored.redis.flushall()
        await avery.click("button.lock-toggle")
        status = avery.locator(".lock-status")
        await expect(status).to_have_text("Locks are being restored; trying again in 5 s.")
        await restore_by_hand(unrestored)
        rows = avery.locator(".lock-row")
        await expect(rows).to_have_text(
            [f"“{FIRST_SECTION}” Avery Attorney (you)"], timeout=CLICK_WITHIN_MS
        )
        await expect(status).to_have_text(
            f"You locked “{FIRST_SECTION}” (renewed while this letter is open)."
        )
        assert avery.errors == []  # type: ignore[attr-defined]
