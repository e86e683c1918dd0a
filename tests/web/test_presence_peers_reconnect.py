"""After this page's socket drops and reconnects, its COLLEAGUES list it again in "Here now"
(and draw its caret) at once, not at its next renewal (~15 s later). The gateway told them it
left with a null state at its clock c; y-websocket re-sent its state at that same clock, which
the gateway drops as an echo and peers would ignore (y-protocols' rules). The page now bumps
its own clock on the close, so the reconnect sends c+1 (src/editor/collab.ts
`repairAwarenessAfterDrop`, step 2).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_presence_reconnect.py
(tests/web/browser.py's page helpers); the socket is closed from the page, y-websocket
reconnects after ~0.2 s.
"""

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import DROP_SOCKET, pages, saved, seen_on_a_letter

AVERY = "Avery Attorney"
PROMPTLY_MS = 2_000  # a renewal is 15 s after her last change, checked every 3 s


async def test_colleagues_list_a_reconnected_page_again_at_once(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        # Her caret in the letter: an awareness change, so her renewal is 15 s away from here.
        seen = await seen_on_a_letter(
            base_url, avery, parker, "Peers reconnect", own=avery, name=AVERY
        )
        sent = await seen.clock()

        # The gateway tells him she left (a null state at her clock) before she is back.
        await avery.evaluate(DROP_SOCKET)
        await saved(avery)  # Connected again, synced
        # Her state sent on the reconnect brings her back within moments.
        await expect(seen.listed).to_have_count(1, timeout=PROMPTLY_MS)
        await expect(seen.caret).to_have_count(1, timeout=PROMPTLY_MS)
        await eventually(seen.heard, timeout=2, interval=0.1)
        # Bumped by the close (by each close, if a reconnect attempt failed and closed again: a
        # loaded machine): without it her clock stays `sent` until her renewal, 15 s away.
        assert await seen.clock() > sent
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
