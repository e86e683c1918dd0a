"""After this page's socket drops and reconnects, its COLLEAGUES list it again in "Here now"
(and draw its caret) at once, not at its next renewal (~15 s later). The gateway told them it
left with a null state at its clock c; y-websocket re-sent its state at that same clock, which
the gateway drops as an echo and peers would ignore (y-protocols' rules). The page now bumps
its own clock on the close, so the reconnect sends c+1 (src/editor/collab.ts
`outrunOwnRemovalOnClose`).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_presence_reconnect.py (its
page helpers); the socket is closed from the page, y-websocket reconnects after ~0.2 s.
"""

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import EDITABLE, create_letter, pages, saved, sign_in
from tests.web.test_browser import base_url, browser
from tests.web.test_presence_reconnect import _CLOCK, _DROP

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

AVERY = "Avery Attorney"
PROMPTLY_MS = 2_000  # a renewal is 15 s after her last change, checked every 3 s


async def test_colleagues_list_a_reconnected_page_again_at_once(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Peers reconnect", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await saved(parker)
        # Her caret in the letter: an awareness change, so her renewal is 15 s away from here.
        await avery.locator(".letter-body p").first.click()
        listed = parker.locator(f".users [data-name='{AVERY}']")
        caret = parker.locator(".letter-body .collaboration-carets__label", has_text="Avery")
        await expect(listed).to_have_count(1)
        await expect(caret).to_have_count(1)

        async def clock() -> int:
            return int(await avery.evaluate(_CLOCK, AVERY))

        async def heard() -> bool:  # he has her last awareness update
            return await parker.evaluate(_CLOCK, AVERY) == await clock()

        await eventually(heard, timeout=10, interval=0.1)
        sent = await clock()

        # The gateway tells him she left (a null state at her clock) before she is back.
        await avery.evaluate(_DROP)
        await saved(avery)  # Connected again, synced
        # Her state sent on the reconnect brings her back within moments.
        await expect(listed).to_have_count(1, timeout=PROMPTLY_MS)
        await expect(caret).to_have_count(1, timeout=PROMPTLY_MS)
        await eventually(heard, timeout=2, interval=0.1)
        # Bumped by the close (by each close, if a reconnect attempt failed and closed again: a
        # loaded machine): without it her clock stays `sent` until her renewal, 15 s away.
        assert await clock() > sent
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
