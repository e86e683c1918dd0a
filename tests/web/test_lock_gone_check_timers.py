"""While a tab holds a lock, whether its section is gone (heading retitled) is checked once the
edits pause (locks.ts, GONE_AFTER_MS): typing moves one timer's deadline, it does not arm a timer
per keystroke. That the check still releases a retitled heading's lock is
test_submit_once_and_session_end.py's `test_a_lock_on_a_renamed_heading_...`.

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py).
"""

from playwright.async_api import Browser, expect

from tests.web.browser import create_letter, new_page, sign_in

GONE_AFTER_MS = 1_000  # locks.ts

# Counts the timers armed with the gone check's delay from now on.
_COUNT_TIMERS = """(delay) => {
  window.timersArmed = 0
  const original = window.setTimeout
  window.setTimeout = (fn, ms, ...args) => {
    if (ms === delay) window.timersArmed++
    return original(fn, ms, ...args)
  }
}"""

KEYS = 30


async def test_typing_in_a_locked_section_arms_no_timer_per_key(
    base_url: str, browser: Browser
) -> None:
    context, page = await new_page(browser)
    try:
        await sign_in(page, base_url, "avery")
        await create_letter(page, "Timers", "Intro line\nTerms\nBody of terms")
        await page.click(".letter-body p:has-text('Terms') >> nth=0")
        await page.click("button[aria-label=Heading]")
        await expect(page.locator(".letter-body h2")).to_have_text("Terms")
        await page.click(".letter-body p:has-text('Body of terms')")
        await page.click("button.lock-toggle")
        await expect(page.locator(".lock-status")).to_contain_text("You locked “Terms”")

        await page.evaluate(_COUNT_TIMERS, GONE_AFTER_MS)
        await page.keyboard.press("End")
        await page.keyboard.type("x" * KEYS, delay=20)  # one burst: well within a pause
        await expect(page.locator(".letter-body p:has-text('Body of terms')")).to_contain_text(
            "x" * KEYS
        )
        armed = await page.evaluate("window.timersArmed")
        assert armed <= 3, f"{armed} timers for {KEYS} keys"
        # The section is still there: the lock is kept.
        await expect(page.locator(".lock-row")).to_have_count(1)
        await expect(page.locator(".lock-toggle")).to_have_text("Unlock this section")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
