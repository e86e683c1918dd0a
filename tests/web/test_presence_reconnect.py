"""After this page's socket drops and reconnects, "Here now" lists the colleagues again (and
draws their carets) as soon as the gateway re-sends their awareness states, not at their next
renewal (~15 s later): y-websocket removed their states on the close while y-protocols kept
their clocks, and a state re-sent with the same clock was ignored (src/editor/collab.ts
`repairAwarenessAfterDrop`, step 1).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (the stack and
browser fixtures of conftest.py). The socket is closed from the page (a network drop's close, as the
page sees it); y-websocket reconnects after its backoff (~0.2 s).
"""

from playwright.async_api import Browser, expect

from tests.web.browser import DROP_SOCKET, pages, saved, seen_on_a_letter

# Well under a colleague's renewal (15 s after his last change, checked every 3 s).
PROMPTLY_MS = 5_000
PARKER = "Parker Paralegal"


async def test_colleagues_are_listed_again_at_once_after_a_reconnect(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        # His caret in the letter (an awareness change: his renewal is 15 s away from here).
        seen = await seen_on_a_letter(base_url, avery, parker, "Reconnect", own=parker, name=PARKER)
        sent = await seen.clock()

        await avery.evaluate(DROP_SOCKET)
        await expect(seen.listed).to_have_count(0)  # y-websocket removed him with the connection
        await saved(avery)  # Connected again, synced
        await expect(seen.listed).to_have_count(1, timeout=PROMPTLY_MS)
        await expect(seen.listed.locator(".status")).to_have_text("active")
        await expect(seen.caret).to_have_count(1, timeout=PROMPTLY_MS)
        # From the gateway's re-send: he sent nothing since (no renewal brought him back).
        assert await seen.clock() == sent and await seen.heard()
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
