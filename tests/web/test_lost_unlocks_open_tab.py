"""A release refused as a tab went (503: Redis wiped, its locks not restored yet) while the same
user still has the letter open in another tab: that open tab sends it again once the restore
is done, not only a NEW letter page (it waited for one: the lock stayed up for its TTL, 5 min).
The open tab hears the release remembered (`storage` event), reads its lock list, waits out the
restore's 503s, and sends what is left (src/editor/lost-unlocks.ts, same-deadline rule kept).

On tests/web/test_locks_restoring.py's `unrestored` stack (no restore by the gateway itself;
the test restores by hand), as tests/web/test_lost_unlocks.py.
"""

from playwright.async_api import Browser, expect

from tests.web.browser import (
    FIRST_SECTION,
    lock_first_paragraph,
    open_letter,
    pages,
    post_letter,
)
from tests.web.test_browser import browser
from tests.web.test_locks_restoring import Stack, unrestored
from tests.web.test_lost_unlocks import refused_as_it_went

__all__ = ["browser", "unrestored"]  # the fixtures this module uses

# The open tab asks its list again every Retry-After (5 s) while the locks are being restored.
WITHIN_MS = 15_000


async def test_a_release_refused_as_a_tab_went_is_sent_by_the_users_open_tab(
    unrestored: Stack, browser: Browser
) -> None:
    letter = await post_letter(unrestored.url, unrestored.secret, "Two tabs")
    async with pages(browser, 2) as (avery, parker):
        await open_letter(avery, unrestored.url, "avery", letter)
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
        await expect(seen).to_have_count(0, timeout=WITHIN_MS)
        await expect(second.locator(".lock-row")).to_have_count(0)
        stored = await second.evaluate("() => Object.keys(localStorage)")
        assert not [key for key in stored if key.startswith("steno.unlocks.")], stored
        assert errors == [] and avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
