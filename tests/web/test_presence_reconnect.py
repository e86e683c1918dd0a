"""After this page's socket drops and reconnects, "Here now" lists the colleagues again (and
draws their carets) as soon as the gateway re-sends their awareness states, not at their next
renewal (~15 s later): y-websocket removed their states on the close while y-protocols kept
their clocks, and a state re-sent with the same clock was ignored (src/editor/collab.ts
`forgetRemoteClocksOnClose`).

Against `steno-collab dev` in Debian's Chromium, as tests/web/test_browser.py (its stack and
browser fixtures). The socket is closed from the page (a network drop's close, as the page
sees it); y-websocket reconnects after its backoff (~0.2 s).
"""

from playwright.async_api import Browser, expect

from tests.support import eventually
from tests.web.browser import EDITABLE, create_letter, pages, saved, sign_in
from tests.web.test_browser import base_url, browser

__all__ = ["base_url", "browser"]  # the stack and browser fixtures of test_browser.py

# The page's provider, through the TipTap editor on the letter's element.
_PROVIDER = """document.querySelector('.letter-body').editor.extensionManager.extensions
  .find((extension) => extension.name === 'collaborationCaret').options.provider"""
_DROP = f"() => {_PROVIDER}.ws.close()"
# The awareness clock of the client named `name` as this page last heard it (its own: as it
# last sent it), or null if the page has no state of it.
_CLOCK = f"""(name) => {{
  const awareness = {_PROVIDER}.awareness
  const entry = [...awareness.getStates()].find(([, state]) => state.user?.name === name)
  return entry ? awareness.meta.get(entry[0]).clock : null
}}"""
# Well under a colleague's renewal (15 s after his last change, checked every 3 s).
PROMPTLY_MS = 5_000
PARKER = "Parker Paralegal"


async def test_colleagues_are_listed_again_at_once_after_a_reconnect(
    base_url: str, browser: Browser
) -> None:
    async with pages(browser, 2) as (avery, parker):
        await sign_in(avery, base_url, "avery")
        letter = await create_letter(avery, "Reconnect", "Dear Sir,\nThe terms follow.")
        await parker.goto(f"{base_url}/?as=parker#/letters/{letter}")
        await parker.wait_for_selector(EDITABLE)
        await saved(parker)
        # His caret in the letter (an awareness change: his renewal is 15 s away from here).
        await parker.locator(".letter-body p").first.click()
        listed = avery.locator(f".users [data-name='{PARKER}']")
        caret = avery.locator(".letter-body .collaboration-carets__label", has_text="Parker")
        await expect(listed).to_have_count(1)
        await expect(caret).to_have_count(1)

        async def clock() -> int:
            return int(await parker.evaluate(_CLOCK, PARKER))

        async def heard() -> bool:  # she has his last awareness update (the caret's come in two)
            return await avery.evaluate(_CLOCK, PARKER) == await clock()

        await eventually(heard, timeout=10, interval=0.1)
        sent = await clock()

        await avery.evaluate(_DROP)
        await expect(listed).to_have_count(0)  # y-websocket removed him with the connection
        await saved(avery)  # Connected again, synced
        await expect(listed).to_have_count(1, timeout=PROMPTLY_MS)
        await expect(listed.locator(".status")).to_have_text("active")
        await expect(caret).to_have_count(1, timeout=PROMPTLY_MS)
        # From the gateway's re-send: he sent nothing since (no renewal brought him back).
        assert await clock() == sent and await heard()
        assert avery.errors == [] and parker.errors == []  # type: ignore[attr-defined]
